package testkit

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

func TestSyncBuffer(t *testing.T) {
	var b SyncBuffer
	done := b.WaitFor("second")
	log := slog.New(slog.NewJSONHandler(&b, nil))
	log.Info("first", "n", 1)
	select {
	case <-done:
		t.Fatal("WaitFor fired on another message")
	default:
	}
	log.Info("second")
	log.Info("first", "n", 2)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("WaitFor did not fire")
	}
	if n := len(b.Lines(t)); n != 3 {
		t.Errorf("%d lines, want 3", n)
	}
	if got := b.All(t, "first"); len(got) != 2 || got[1]["n"] != 2.0 {
		t.Errorf("All(first) = %v", got)
	}
	if got := b.Only(t, "second"); got["msg"] != "second" {
		t.Errorf("Only(second) = %v", got)
	}
}

func TestClosedAddr(t *testing.T) {
	addr := ClosedAddr(t)
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
		c.Close()
		t.Errorf("%s accepted a connection", addr)
	}
}

func TestSignJWT(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{"RS256", "PS256"} {
		tok := SignJWT(t, key, map[string]any{"alg": alg, "kid": "k1"}, map[string]any{"sub": "s", "n": 1})
		if h := JWTHeader(t, tok); h["alg"] != alg || h["kid"] != "k1" {
			t.Errorf("%s: header %v", alg, h)
		}
		if c := JWTClaims(t, tok); c["sub"] != "s" || c["n"] != 1.0 {
			t.Errorf("%s: claims %v", alg, c)
		}
		input, sig, _ := strings.Cut(tok[strings.Index(tok, ".")+1:], ".")
		input = tok[:strings.Index(tok, ".")] + "." + input
		raw, err := base64.RawURLEncoding.DecodeString(sig)
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256([]byte(input))
		if alg == "RS256" {
			err = rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], raw)
		} else {
			err = rsa.VerifyPSS(&key.PublicKey, crypto.SHA256, digest[:], raw, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		if err != nil {
			t.Errorf("%s: the signature does not verify: %v", alg, err)
		}
	}
}
