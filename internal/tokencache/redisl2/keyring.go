package redisl2

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/tokencache"
)

// KeySize is the length of an encryption key: AES-256.
const KeySize = 32

// maxKeyIDLen bounds a key ID; it must fit the value's one-byte length field.
const maxKeyIDLen = 64

// Value format, version 1:
//
//	version (1 byte, = 1)
//	key ID length (1 byte, 1..64)
//	key ID (ASCII)
//	nonce (12 random bytes)
//	AES-256-GCM ciphertext and tag of the plaintext
//
// The additional data is the header (version, key ID length, key ID)
// followed by the Redis key, so a value copied under another key, or with
// its key ID rewritten, fails to authenticate.
//
// The plaintext is the Entry's ExpiresOn as big-endian int64 Unix
// nanoseconds (0 for the zero time) followed by the access token's bytes.
const (
	formatV1  = 1
	nonceSize = 12
	expirySz  = 8
)

// Keyring holds the AES-256-GCM keys that encrypt the values stored in
// Redis: one current key that encrypts, and older keys that only decrypt,
// so keys can be rotated without emptying the cache. It is immutable and
// safe for concurrent use. Its String and LogValue name the key IDs only.
type Keyring struct {
	current string
	ids     []string // sorted
	aeads   map[string]cipher.AEAD
}

// ParseKeyring parses spec, a comma-separated list of KEY_ID:BASE64_KEY
// entries (standard base64 of 32 random bytes, e.g. from
// `openssl rand -base64 32`), and makes current, which must be one of the
// IDs, the key that encrypts. A key ID is 1 to 64 characters of A-Z a-z
// 0-9 . _ -. Spaces around entries are ignored.
//
// Errors name the entry by position, and name a key ID only once its entry
// has parsed: no error contains key material, even when an entry is
// written the wrong way round.
func ParseKeyring(spec, current string) (*Keyring, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, errors.New("redisl2: keyring: no keys given (want KEY_ID:BASE64_KEY[,...])")
	}
	kr := &Keyring{aeads: make(map[string]cipher.AEAD)}
	for i, entry := range strings.Split(spec, ",") {
		n := i + 1
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, fmt.Errorf("redisl2: keyring: entry %d is empty", n)
		}
		id, b64, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("redisl2: keyring: entry %d: want KEY_ID:BASE64_KEY", n)
		}
		id, b64 = strings.TrimSpace(id), strings.TrimSpace(b64)
		if !validKeyID(id) {
			return nil, fmt.Errorf("redisl2: keyring: entry %d: key ID must be 1 to %d characters of A-Z a-z 0-9 . _ -", n, maxKeyIDLen)
		}
		key, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err != nil {
			// base64.CorruptInputError holds an offset, never the input.
			return nil, fmt.Errorf("redisl2: keyring: entry %d: key is not standard base64: %w", n, err)
		}
		if len(key) != KeySize {
			clear(key)
			return nil, fmt.Errorf("redisl2: keyring: entry %d: key is %d bytes, want %d (AES-256)", n, len(key), KeySize)
		}
		if _, dup := kr.aeads[id]; dup {
			clear(key)
			return nil, fmt.Errorf("redisl2: keyring: entry %d: duplicate key ID %q", n, id)
		}
		aead, err := newAEAD(key)
		clear(key)
		if err != nil {
			return nil, fmt.Errorf("redisl2: keyring: entry %d: %w", n, err)
		}
		kr.aeads[id] = aead
		kr.ids = append(kr.ids, id)
	}
	slices.Sort(kr.ids)
	if _, ok := kr.aeads[current]; !ok {
		// current is not printed: a misplaced key could have been passed here.
		return nil, fmt.Errorf("redisl2: keyring: the current key ID is not in the keyring (key IDs: %s)", strings.Join(kr.ids, ", "))
	}
	kr.current = current
	return kr, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func validKeyID(id string) bool {
	if id == "" || len(id) > maxKeyIDLen {
		return false
	}
	for _, r := range id {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// Current is the ID of the key that encrypts.
func (kr *Keyring) Current() string { return kr.current }

// IDs are the key IDs in the keyring, sorted.
func (kr *Keyring) IDs() []string { return slices.Clone(kr.ids) }

// String names the key IDs, never the keys.
func (kr *Keyring) String() string {
	if kr == nil {
		return "redisl2.Keyring(nil)"
	}
	return fmt.Sprintf("redisl2.Keyring{current: %s, ids: [%s]}", kr.current, strings.Join(kr.ids, " "))
}

// GoString is String, so %#v does not dump the ciphers either.
func (kr *Keyring) GoString() string { return kr.String() }

// LogValue names the key IDs, never the keys.
func (kr *Keyring) LogValue() slog.Value {
	if kr == nil {
		return slog.StringValue("none")
	}
	return slog.GroupValue(slog.String("current", kr.current), slog.Any("ids", kr.ids))
}

// seal encrypts e for storage under redisKey with the current key.
func (kr *Keyring) seal(redisKey string, e tokencache.Entry) ([]byte, error) {
	aead := kr.aeads[kr.current]
	hdrLen := 2 + len(kr.current)
	out := make([]byte, hdrLen+nonceSize, hdrLen+nonceSize+expirySz+len(e.AccessToken)+aead.Overhead())
	out[0] = formatV1
	out[1] = byte(len(kr.current))
	copy(out[2:], kr.current)
	nonce := out[hdrLen:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("redisl2: nonce: %w", err)
	}
	plain := make([]byte, expirySz+len(e.AccessToken))
	var nanos int64
	if !e.ExpiresOn.IsZero() {
		nanos = e.ExpiresOn.UnixNano()
	}
	binary.BigEndian.PutUint64(plain, uint64(nanos))
	copy(plain[expirySz:], e.AccessToken)
	out = aead.Seal(out, nonce, plain, additionalData(out[:hdrLen], redisKey))
	clear(plain)
	return out, nil
}

// Why a stored value could not be opened. Bounded: used in logs.
const (
	reasonMalformed    = "malformed"
	reasonVersion      = "unsupported_version"
	reasonUnknownKeyID = "unknown_key_id"
	reasonAuth         = "authentication_failed"
)

// openError is a value that could not be decrypted. Its KeyID is the ID
// the value names, or "" when there is none or it is not a valid key ID
// (so it is safe to log). It never holds any part of the value.
type openError struct {
	Reason string
	KeyID  string
}

func (e *openError) Error() string {
	return fmt.Sprintf("redisl2: stored value not decryptable: %s (key ID %q)", e.Reason, e.KeyID)
}

// open decrypts a value read from redisKey, with whichever key it names.
func (kr *Keyring) open(redisKey string, v []byte) (tokencache.Entry, error) {
	if len(v) < 2 {
		return tokencache.Entry{}, &openError{Reason: reasonMalformed}
	}
	if v[0] != formatV1 {
		return tokencache.Entry{}, &openError{Reason: reasonVersion}
	}
	idLen := int(v[1])
	hdrLen := 2 + idLen
	if idLen == 0 || len(v) < hdrLen {
		return tokencache.Entry{}, &openError{Reason: reasonMalformed}
	}
	id := string(v[2:hdrLen])
	if !validKeyID(id) {
		return tokencache.Entry{}, &openError{Reason: reasonMalformed}
	}
	aead, ok := kr.aeads[id]
	if !ok {
		return tokencache.Entry{}, &openError{Reason: reasonUnknownKeyID, KeyID: id}
	}
	if len(v) < hdrLen+nonceSize+aead.Overhead()+expirySz {
		return tokencache.Entry{}, &openError{Reason: reasonMalformed, KeyID: id}
	}
	nonce := v[hdrLen : hdrLen+nonceSize]
	plain, err := aead.Open(nil, nonce, v[hdrLen+nonceSize:], additionalData(v[:hdrLen], redisKey))
	if err != nil {
		return tokencache.Entry{}, &openError{Reason: reasonAuth, KeyID: id}
	}
	e := tokencache.Entry{AccessToken: string(plain[expirySz:])}
	if nanos := int64(binary.BigEndian.Uint64(plain)); nanos != 0 {
		e.ExpiresOn = time.Unix(0, nanos)
	}
	clear(plain)
	return e, nil
}

func additionalData(header []byte, redisKey string) []byte {
	ad := make([]byte, 0, len(header)+len(redisKey))
	ad = append(ad, header...)
	return append(ad, redisKey...)
}
