package proxy

import (
	"net/http"
	"net/netip"
	"testing"
)

// The gateway's clients connect from 127.0.0.1. A client-sent forwarding
// header is believed only from a trusted peer.
func TestForwardedHeaders(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	other := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	spoof := http.Header{
		"X-Forwarded-For":    {"203.0.113.7"},
		"X-Forwarded-Host":   {"evil.example"},
		"X-Forwarded-Proto":  {"https"},
		"X-Forwarded-Port":   {"443"},
		"X-Forwarded-Prefix": {"/admin"},
		"Forwarded":          {"for=203.0.113.7;proto=https"},
		"X-Real-Ip":          {"203.0.113.7"},
		"X_forwarded_for":    {"203.0.113.7"},
	}
	absent := ""
	tests := []struct {
		name    string
		trusted []netip.Prefix
		header  http.Header
		want    map[string]string // "" = absent
	}{
		{
			name: "direct client, nothing sent",
			want: map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "gw.example", "X-Forwarded-Proto": "http", "Forwarded": absent},
		},
		{
			name:   "direct client spoofing every forwarding header",
			header: spoof,
			want: map[string]string{
				"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "gw.example", "X-Forwarded-Proto": "http",
				"X-Forwarded-Port": absent, "X-Forwarded-Prefix": absent, "Forwarded": absent, "X-Real-Ip": absent, "X_forwarded_for": absent,
			},
		},
		{
			name:    "spoofing from a peer outside the trusted prefixes",
			trusted: other,
			header:  spoof,
			want:    map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "gw.example", "X-Forwarded-Proto": "http", "X-Real-Ip": absent},
		},
		{
			name:    "trusted proxy: chain kept, peer appended",
			trusted: loopback,
			header: http.Header{
				"X-Forwarded-For":   {"203.0.113.7, 10.1.2.3"},
				"X-Forwarded-Host":  {"api.example.com"},
				"X-Forwarded-Proto": {"https"},
				"X-Forwarded-Port":  {"443"},
				"Forwarded":         {"for=203.0.113.7"},
			},
			want: map[string]string{
				"X-Forwarded-For": "203.0.113.7, 10.1.2.3, 127.0.0.1", "X-Forwarded-Host": "api.example.com",
				"X-Forwarded-Proto": "https", "X-Forwarded-Port": "443", "Forwarded": absent,
			},
		},
		{
			name:    "trusted proxy: several X-Forwarded-For lines folded",
			trusted: loopback,
			header:  http.Header{"X-Forwarded-For": {"203.0.113.7", "10.1.2.3"}},
			want:    map[string]string{"X-Forwarded-For": "203.0.113.7, 10.1.2.3, 127.0.0.1", "X-Forwarded-Host": "gw.example", "X-Forwarded-Proto": "http"},
		},
		{
			name:    "trusted proxy that sent nothing",
			trusted: loopback,
			want:    map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "gw.example", "X-Forwarded-Proto": "http"},
		},
	}
	forEachLeg(t, func(t *testing.T, leg Leg) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				up, seen := newUpstream(t, nil)
				g := newGateway(t, ordersRoute(mustURL(t, up.URL)), setup{cfg: Config{TrustedProxies: tc.trusted}, leg: leg})
				req, _ := http.NewRequest(http.MethodGet, g.URL+"/orders/1", nil)
				req.Host = "gw.example"
				for name, vals := range tc.header {
					req.Header[name] = vals
				}
				g.do(t, req)
				got := receive(t, seen).Header
				for name, want := range tc.want {
					vals, ok := got[name]
					switch {
					case want == absent && ok:
						t.Errorf("%s = %q, want it dropped", name, vals)
					case want != absent && (len(vals) != 1 || vals[0] != want):
						t.Errorf("%s = %q, want %q", name, vals, want)
					}
				}
			})
		}
	})
}

func TestTrustedPeer(t *testing.T) {
	p := New(Config{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("fd00::/8"),
		netip.MustParsePrefix("fe80::/10"),
		netip.MustParsePrefix("192.168.1.77/24"), // not masked: New masks it
	}})
	tests := []struct {
		remote string
		want   bool
	}{
		{"10.1.2.3:5000", true},
		{"11.1.2.3:5000", false},
		{"[::ffff:10.1.2.3]:5000", true},
		{"[fd00::1]:443", true},
		{"[fe80::1%eth0]:443", true},
		{"[2001:db8::1]:443", false},
		{"192.168.1.5:80", true},
		{"10.1.2.3", false}, // no port: not what net/http sets
		{"", false},
		{"@", false}, // a Unix socket peer
		{"garbage:80", false},
	}
	for _, tc := range tests {
		t.Run(tc.remote, func(t *testing.T) {
			if got := p.trustedPeer(tc.remote); got != tc.want {
				t.Errorf("trustedPeer(%q) = %v, want %v", tc.remote, got, tc.want)
			}
		})
	}
	if New(Config{}).trustedPeer("10.1.2.3:5000") {
		t.Error("with no TrustedProxies, a peer was trusted")
	}
}

func TestIsForwardingHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"Forwarded": true, "FORWARDED": true, "X-Real-Ip": true, "x_real_ip": true,
		"X-Forwarded-For": true, "X_Forwarded_Host": true, "x-forwarded-anything": true,
		"X-Forwarded-": true, "X-Forwarded": false, "Forwarded-For": false, "X-Forwardedfor": false,
		"X-Real-Ipx": false, "Authorization": false, "": false, "X-Request-Id": false,
	} {
		if got := isForwardingHeader(name); got != want {
			t.Errorf("isForwardingHeader(%q) = %v, want %v", name, got, want)
		}
	}
}
