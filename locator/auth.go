package locator

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/edgemigrate/edgemigrate/internal/ratelimit"
)

const unauthorizedMessage = "missing or invalid client credentials"

// AuthOptions configure an Auth. Tokens is required.
type AuthOptions struct {
	Tokens Tokens
	// FailedPerSecond and FailedBurst limit failed authentications, per remote IP and per
	// claimed client id; once either is exhausted, further failures are answered 429.
	// Defaults: DefaultFailedAuthPerSecond, DefaultFailedAuthBurst.
	FailedPerSecond float64
	FailedBurst     int
	// Now is the limiter's clock; default time.Now.
	Now func() time.Time
}

// Auth checks clients' bearer tokens. The locator and the edge gateway share one, so a
// guesser's failures on either route count against the same budgets.
type Auth struct {
	tokens Tokens
	// failedByIP and failedByID count failures only: many cars share a roadside NAT
	// address, and one bad client behind it must not lock the others out.
	failedByIP, failedByID *ratelimit.Set
	now                    func() time.Time
}

// NewAuth checks o, fills in its defaults and returns an Auth.
func NewAuth(o AuthOptions) (*Auth, error) {
	if o.Tokens == nil {
		return nil, errors.New("client authentication needs client tokens")
	}
	if o.FailedPerSecond == 0 {
		o.FailedPerSecond = DefaultFailedAuthPerSecond
	}
	if o.FailedBurst == 0 {
		o.FailedBurst = DefaultFailedAuthBurst
	}
	if o.FailedPerSecond < 0 || math.IsNaN(o.FailedPerSecond) || o.FailedBurst < 0 {
		return nil, fmt.Errorf("failed authentications per second must be positive and their burst too, got %v and %d", o.FailedPerSecond, o.FailedBurst)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	limit := rate.Limit(o.FailedPerSecond)
	return &Auth{tokens: o.Tokens, failedByIP: ratelimit.New(limit, o.FailedBurst), failedByID: ratelimit.New(limit, o.FailedBurst), now: o.Now}, nil
}

// Refusal is why a request was not authenticated.
type Refusal struct {
	// Status is 401 (bad or missing credentials) or 429 (too many failures from the
	// address or for the client id).
	Status int
	// Reason is for logs: it tells an unknown client from a wrong token, which Message,
	// the client's answer, must not.
	Reason, Message string
	// RetryAfter is set with 429.
	RetryAfter time.Duration
}

// Respond aborts the request with the refusal; realm names the API in WWW-Authenticate.
func (r *Refusal) Respond(c *gin.Context, realm string) {
	switch r.Status {
	case http.StatusTooManyRequests:
		SetRetryAfter(c, r.RetryAfter)
	case http.StatusUnauthorized:
		c.Header("WWW-Authenticate", `Bearer realm="`+realm+`"`)
	}
	c.AbortWithStatusJSON(r.Status, gin.H{"error": r.Message})
}

// Check authenticates a request of client id with the Authorization header from remote
// address ip (the connection's, never X-Forwarded-For: that is the spoofer's to choose).
// It returns nil when it accepts.
//
// The credential is checked first, in constant time, and a valid one is always accepted:
// the limits apply to failures only, so a burst of bad tokens from an address shared by
// many cars costs the honest ones nothing. That leaves guessing unslowed for a guesser who
// is right, which is harmless when tokens are random and long (SecretTokens warns below
// MinTokenLength): the limits bound the work and the noise of failures.
func (a *Auth) Check(ip, id, header string) *Refusal {
	reason := a.verify(id, header)
	if reason == "" {
		return nil
	}
	now := a.now()
	blockedIP, waitIP := a.failedByIP.Exhausted(ip, now)
	blockedID, waitID := a.failedByID.Exhausted(id, now)
	if blockedIP || blockedID {
		return &Refusal{Status: http.StatusTooManyRequests, Reason: reason + "; too many failed authentications from this address or for this client",
			Message: "too many failed authentication attempts; retry later", RetryAfter: max(waitIP, waitID)}
	}
	a.failedByIP.Take(ip, now)
	a.failedByID.Take(id, now)
	return &Refusal{Status: http.StatusUnauthorized, Reason: reason, Message: unauthorizedMessage}
}

// verify checks the bearer token of id; it returns why it refused, "" when it accepts.
// Unknown clients and wrong tokens take the same time and get the same answer, so neither
// ids nor token lengths can be probed.
func (a *Auth) verify(id, header string) string {
	const prefix = "Bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "missing bearer token"
	}
	want, known := a.tokens.Token(id)
	got, wantSum := sha256.Sum256([]byte(header[len(prefix):])), sha256.Sum256([]byte(want))
	match := subtle.ConstantTimeCompare(got[:], wantSum[:]) == 1
	switch {
	case !known:
		return "unknown client"
	case !match:
		return "wrong token"
	}
	return ""
}

// SetRetryAfter sets Retry-After to wait, rounded up to whole seconds, at least one.
func SetRetryAfter(c *gin.Context, wait time.Duration) {
	c.Header("Retry-After", ratelimit.RetryAfter(wait))
}

// ValidateClientID accepts DNS labels (RFC 1123): 1–63 lower-case letters, digits and
// '-', starting and ending with a letter or digit. Hand-written: it runs on every request.
func ValidateClientID(id string) error {
	if id == "" || len(id) > maxClientIDLength {
		return fmt.Errorf("client id must be 1 to %d characters, got %d", maxClientIDLength, len(id))
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9':
		case ch == '-' && i > 0 && i < len(id)-1:
		default:
			return fmt.Errorf("client id %q must be lower-case letters, digits and '-', starting and ending with a letter or digit", id)
		}
	}
	return nil
}

// EscapedRest is the part of a request's escaped path after /v1/clients/{id}/{route},
// kept as the client escaped it ("" or starting with '/'); decodedRest (gin's *rest) is the
// fallback when the prefix itself was escaped oddly.
func EscapedRest(escaped, route, decodedRest string) string {
	// "", "v1", "clients", id, route, rest
	parts := strings.SplitN(escaped, "/", 6)
	if len(parts) >= 5 && parts[4] == route {
		if len(parts) == 6 {
			return "/" + parts[5]
		}
		return ""
	}
	return (&url.URL{Path: decodedRest}).EscapedPath()
}
