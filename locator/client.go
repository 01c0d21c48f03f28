package locator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/edgemigrate/edgemigrate/geo"
)

// Client calls a locator API: cars, tests and the demo use it.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client of the locator at baseURL (e.g. http://127.0.0.1:8080). A nil
// httpClient means one with a 10 s timeout.
func NewClient(baseURL string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), http: httpClient}
}

// StatusError is a locator's refusal: the HTTP status and the message it gave.
type StatusError struct {
	StatusCode int
	Message    string
	// RetryAfter is the wait the locator asked for with a 429, if any.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("locator answered %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// ReportLocation reports the position of clientID, authenticated by its token.
func (c *Client) ReportLocation(ctx context.Context, clientID, token string, p geo.Point) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding location of client %q: %w", clientID, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.url(clientID, "location"), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("reporting location of client %q: %w", clientID, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("reporting location of client %q: %w", clientID, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reporting location of client %q: %w", clientID, statusError(resp))
	}
	return nil
}

// Endpoint asks where clientID's service runs now.
func (c *Client) Endpoint(ctx context.Context, clientID string) (Route, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(clientID, "endpoint"), nil)
	if err != nil {
		return Route{}, fmt.Errorf("asking the endpoint of client %q: %w", clientID, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Route{}, fmt.Errorf("asking the endpoint of client %q: %w", clientID, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return Route{}, fmt.Errorf("asking the endpoint of client %q: %w", clientID, statusError(resp))
	}
	var out endpointResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out); err != nil {
		return Route{}, fmt.Errorf("decoding the endpoint of client %q: %w", clientID, err)
	}
	return out.Route, nil
}

func (c *Client) url(clientID, what string) string {
	return c.base + "/v1/clients/" + url.PathEscape(clientID) + "/" + what
}

func statusError(resp *http.Response) *StatusError {
	e := &StatusError{StatusCode: resp.StatusCode}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &body) == nil && body.Error != "" {
		e.Message = body.Error
	} else {
		e.Message = strings.TrimSpace(string(data))
	}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		e.RetryAfter = time.Duration(secs) * time.Second
	}
	return e
}

// drain reads what is left of the body so the connection can be reused, then closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}
