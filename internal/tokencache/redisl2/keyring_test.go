package redisl2

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/tokencache"
)

// newKeyB64 is a fresh random AES-256 key in standard base64.
func newKeyB64(t testing.TB) string {
	t.Helper()
	return base64.StdEncoding.EncodeToString(randomBytes(t, KeySize))
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustKeyring(t testing.TB, spec, current string) *Keyring {
	t.Helper()
	kr, err := ParseKeyring(spec, current)
	if err != nil {
		t.Fatalf("ParseKeyring: %v", err)
	}
	return kr
}

// assertNoKeyMaterial fails if s contains any 8-character run of any of
// the keys, in standard or raw base64 or as bytes.
func assertNoKeyMaterial(t *testing.T, s string, keysB64 ...string) {
	t.Helper()
	for _, k := range keysB64 {
		forms := []string{k, strings.TrimRight(k, "=")}
		if raw, err := base64.StdEncoding.DecodeString(k); err == nil {
			forms = append(forms, string(raw), fmt.Sprintf("%x", raw))
		}
		for _, f := range forms {
			for i := 0; i+8 <= len(f); i++ {
				if strings.Contains(s, f[i:i+8]) {
					t.Fatalf("%q contains key material", s)
				}
			}
		}
	}
}

func TestParseKeyring(t *testing.T) {
	k1, k2 := newKeyB64(t), newKeyB64(t)
	kr := mustKeyring(t, " k2:"+k2+" , k1:"+k1+" ", "k2")
	if got := kr.Current(); got != "k2" {
		t.Errorf("Current() = %q, want k2", got)
	}
	if got := strings.Join(kr.IDs(), ","); got != "k1,k2" {
		t.Errorf("IDs() = %q, want k1,k2", got)
	}
	for _, s := range []string{kr.String(), fmt.Sprintf("%v %+v %#v %s", kr, kr, kr, kr)} {
		assertNoKeyMaterial(t, s, k1, k2)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "keys", kr)
	if !strings.Contains(buf.String(), "keys.current=k2") {
		t.Errorf("log = %q, want keys.current=k2", buf.String())
	}
	assertNoKeyMaterial(t, buf.String(), k1, k2)
}

func TestParseKeyringErrors(t *testing.T) {
	k1, k2 := newKeyB64(t), newKeyB64(t)
	short := base64.StdEncoding.EncodeToString(randomBytes(t, 16))
	// A key in unpadded base64 with no + or /, which passes for a key ID.
	var rawKey string
	for {
		rawKey = base64.RawStdEncoding.EncodeToString(randomBytes(t, KeySize))
		if !strings.ContainsAny(rawKey, "+/") {
			break
		}
	}
	urlKey := base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, KeySize)) // "____…"
	all := []string{k1, k2, short, rawKey, urlKey}

	tests := []struct {
		name    string
		spec    string
		current string
		want    string // in the error
	}{
		{"empty", "", "k1", "no keys given"},
		{"blank", "  ", "k1", "no keys given"},
		{"empty entry", "k1:" + k1 + ",,k2:" + k2, "k1", "entry 2 is empty"},
		{"no colon", k1, "k1", "entry 1: want KEY_ID:BASE64_KEY"},
		{"bad base64", "k1:" + k1[:20] + "!" + k1[21:], "k1", "entry 1: key is not standard base64"},
		{"URL-safe base64", "k1:" + urlKey, "k1", "entry 1: key is not standard base64"},
		{"wrong length", "k1:" + k1 + ",k2:" + short, "k1", "entry 2: key is 16 bytes, want 32"},
		{"duplicate ID", "k1:" + k1 + ",k1:" + k2, "k1", `entry 2: duplicate key ID "k1"`},
		{"current not in ring", "k1:" + k1 + ",k2:" + k2, "k3", "current key ID is not in the keyring (key IDs: k1, k2)"},
		{"key as current", "k1:" + k1, k1, "current key ID is not in the keyring"},
		{"invalid key ID", "k 1:" + k1, "k 1", "entry 1: key ID must be"},
		{"swapped", k1 + ":k1", "k1", "entry 1: key ID must be"},
		{"swapped, unpadded", rawKey + ":k1", rawKey, "entry 1: key is not standard base64"},
		{"empty key ID", ":" + k1, "", "entry 1: key ID must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := ParseKeyring(tt.spec, tt.current)
			if err == nil {
				t.Fatalf("ParseKeyring = %v, want an error", kr)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "redisl2: keyring: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			assertNoKeyMaterial(t, err.Error(), all...)
		})
	}
}

func TestSealOpen(t *testing.T) {
	kr := mustKeyring(t, "k1:"+newKeyB64(t), "k1")
	exp := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, e := range []tokencache.Entry{
		{AccessToken: "eyJ0eXAi.payload.sig", ExpiresOn: exp},
		{AccessToken: "", ExpiresOn: exp},
		{AccessToken: "no-expiry"},
	} {
		v, err := kr.seal("p:abc", e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := kr.open("p:abc", v)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		if got.AccessToken != e.AccessToken || !got.ExpiresOn.Equal(e.ExpiresOn) || got.ExpiresOn.IsZero() != e.ExpiresOn.IsZero() {
			t.Errorf("open(seal(%+v)) = %+v", e, got)
		}
	}
	// Two seals of one entry differ: the nonce is random.
	a, _ := kr.seal("p:abc", tokencache.Entry{AccessToken: "t"})
	b, _ := kr.seal("p:abc", tokencache.Entry{AccessToken: "t"})
	if bytes.Equal(a, b) {
		t.Error("two seals are equal")
	}
}

func TestOpenRefuses(t *testing.T) {
	k1 := newKeyB64(t)
	kr := mustKeyring(t, "k1:"+k1, "k1")
	good, err := kr.seal("p:abc", tokencache.Entry{AccessToken: "secret-token", ExpiresOn: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := mustKeyring(t, "k9:"+newKeyB64(t), "k9").seal("p:abc", tokencache.Entry{AccessToken: "t"})
	wrongKey, _ := mustKeyring(t, "k1:"+newKeyB64(t), "k1").seal("p:abc", tokencache.Entry{AccessToken: "t"})
	edit := func(f func(v []byte)) []byte {
		v := bytes.Clone(good)
		f(v)
		return v
	}
	tests := []struct {
		name   string
		key    string
		value  []byte
		reason string
		keyID  string
	}{
		{"empty", "p:abc", nil, reasonMalformed, ""},
		{"one byte", "p:abc", []byte{1}, reasonMalformed, ""},
		{"version 2", "p:abc", edit(func(v []byte) { v[0] = 2 }), reasonVersion, ""},
		{"zero-length key ID", "p:abc", []byte{1, 0, 'x'}, reasonMalformed, ""},
		{"key ID past end", "p:abc", []byte{1, 9, 'k'}, reasonMalformed, ""},
		{"key ID not printable", "p:abc", []byte{1, 2, 'k', '\n'}, reasonMalformed, ""},
		{"truncated", "p:abc", good[:len(good)-17], reasonMalformed, "k1"},
		{"unknown key ID", "p:abc", other, reasonUnknownKeyID, "k9"},
		{"wrong key", "p:abc", wrongKey, reasonAuth, "k1"},
		{"other Redis key", "p:abd", good, reasonAuth, "k1"},
		{"flipped ciphertext bit", "p:abc", edit(func(v []byte) { v[len(v)-20] ^= 1 }), reasonAuth, "k1"},
		{"flipped tag bit", "p:abc", edit(func(v []byte) { v[len(v)-1] ^= 1 }), reasonAuth, "k1"},
		{"flipped nonce bit", "p:abc", edit(func(v []byte) { v[4] ^= 1 }), reasonAuth, "k1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := kr.open(tt.key, tt.value)
			var oe *openError
			if !errors.As(err, &oe) {
				t.Fatalf("open = %+v, %v; want an *openError", e, err)
			}
			if oe.Reason != tt.reason || oe.KeyID != tt.keyID {
				t.Errorf("open error = %+v, want reason %s, key ID %q", oe, tt.reason, tt.keyID)
			}
			if strings.Contains(err.Error(), "secret-token") {
				t.Errorf("error %q contains the token", err)
			}
			assertNoKeyMaterial(t, err.Error(), k1)
		})
	}
}
