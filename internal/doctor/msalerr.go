package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"

	"github.com/obo-gateway/obo-gateway/internal/obo"
)

// entraError turns an MSAL error into an *obo.Error with obo's own parser;
// network errors are kept whole in Err, for classifyNet.
func entraError(ctx context.Context, err error) *obo.Error {
	var ce msalerrors.CallErr
	if !errors.As(err, &ce) {
		var ne net.Error
		var oe *net.OpError
		var ue *url.Error
		if (errors.As(err, &ne) || errors.As(err, &oe) || errors.As(err, &ue)) && ctx.Err() == nil {
			return &obo.Error{Err: err}
		}
	}
	return obo.ErrorFromMSAL(ctx, err)
}

// traceRE cuts Entra's description before its trace, correlation and timestamp.
var traceRE = regexp.MustCompile(`\s*Trace ID:.*$`)

// describeEntra says what Entra answered, in one line, with the IDs Entra's
// support asks for.
func describeEntra(e *obo.Error) string {
	if e.Status == 0 {
		return e.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Entra answered HTTP %d %s", e.Status, e.Code)
	if d := traceRE.ReplaceAllString(e.Description, ""); d != "" {
		b.WriteString(": " + d)
	} else if e.AADSTS() != 0 {
		fmt.Fprintf(&b, " AADSTS%d", e.AADSTS())
	}
	if e.CorrelationID != "" {
		b.WriteString(" (correlation ID " + e.CorrelationID + ")")
	}
	return b.String()
}
