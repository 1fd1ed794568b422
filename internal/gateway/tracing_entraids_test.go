package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/internal/obo"
	"github.com/obo-gateway/obo-gateway/internal/tracing"
	"github.com/obo-gateway/obo-gateway/internal/tracing/tracingtest"
)

// Entra's x-ms-request-id (a response header: obs-text bytes 0x80-0xFF
// pass Go's client) becomes obo.Error.TraceID when the body has no
// trace_id; on the downstream-token span it goes through tracing.Clean, as
// in tracing.Transport: one such answer cannot make a batch fail to
// marshal. (Found by the second review.)
func TestEntraIDsOnSpanAreCleaned(t *testing.T) {
	recv := tracingtest.Start(t)
	tr, err := tracing.New(context.Background(), tracing.Config{Endpoint: recv.HTTPEndpoint})
	if err != nil {
		t.Fatal(err)
	}
	_, honest := tr.Start(context.Background(), "honest", trace.SpanKindServer)
	honest.End()

	req, _ := http.NewRequest(http.MethodPost, "https://login.example/t/oauth2/v2.0/token", nil)
	resp := &http.Response{
		StatusCode: 400, Request: req,
		Header: http.Header{"X-Ms-Request-Id": {"id-\xff\xfe"}},
		Body:   io.NopCloser(strings.NewReader(`{"error":"invalid_grant","error_codes":[50013]}`)),
	}
	oe := obo.ErrorFromMSAL(context.Background(), msalerrors.CallErr{Req: req, Resp: resp, Err: errors.New("400")})
	if oe.TraceID != "id-\xff\xfe" {
		t.Fatalf("TraceID %q", oe.TraceID)
	}
	_, span := tr.Start(context.Background(), "downstream token", trace.SpanKindInternal)
	traceToken(span, "orders", "api://orders", obo.Token{}, oe)
	span.End()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = tr.Shutdown(ctx)
	if !recv.WaitForSpan(3*time.Second, "honest") {
		t.Error("the honest span was lost: Entra's x-ms-request-id reached obo_gateway.entra.trace_id as invalid UTF-8 and failed the batch")
	}
}
