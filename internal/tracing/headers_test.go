package tracing

import (
	"errors"
	"strings"
	"testing"
)

// A header name that is not an HTTP token ("x api key", or the common slip
// "Authorization: Bearer=abc") or a value with a control character (%0A)
// is refused by Validate: the gateway would start and every export would
// then fail (net/http refuses the header). The problem never quotes the
// entry. (Found by the second review.)
func TestInvalidHeaderNamesAreRefused(t *testing.T) {
	for _, h := range []string{"x api key=abc", "api-key=abc%0Adef", "Authorization: Bearer=abc"} {
		t.Run(h, func(t *testing.T) {
			err := Config{Endpoint: "http://127.0.0.1:1", Headers: h}.Validate()
			var se *SettingError
			if !errors.As(err, &se) || se.Setting != "headers" {
				t.Fatalf("Validate = %v, want a problem of headers", err)
			}
			if strings.Contains(err.Error(), "abc") {
				t.Errorf("the problem quotes the entry: %v", err)
			}
		})
	}
}
