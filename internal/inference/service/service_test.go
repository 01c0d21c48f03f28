package service

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type echo struct {
	Text string `json:"text"`
}

type echoAnswer struct {
	Text string `json:"text"`
	Identity
}

func echoInfer(_ context.Context, body []byte, id Identity) (any, error) {
	var r echo
	if err := DecodeJSON(body, &r); err != nil {
		return nil, err
	}
	switch r.Text {
	case "":
		return nil, BadInput(errors.New("text: empty"))
	case "fail":
		return nil, errors.New("the model broke")
	}
	return echoAnswer{Text: r.Text, Identity: id}, nil
}

func do(t *testing.T, url, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestService(t *testing.T) {
	t.Setenv("POD_NAME", "detector-1")
	t.Setenv("POD_NAMESPACE", "cars")
	t.Setenv("NODE_NAME", "node-a")
	t.Setenv("EDGEMIGRATE_CLUSTER", "edge-b")
	s := &Service{Name: "echo", Identity: IdentityFromEnv(), MaxBody: 64}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	if code, _ := do(t, srv.URL, "GET", "/readyz", ""); code != http.StatusServiceUnavailable {
		t.Errorf("readyz before the model is loaded: %d, want 503", code)
	}
	if code, _ := do(t, srv.URL, "POST", "/infer", `{"text":"hi"}`); code != http.StatusServiceUnavailable {
		t.Errorf("infer before the model is loaded: %d, want 503", code)
	}
	if code, _ := do(t, srv.URL, "GET", "/healthz", ""); code != http.StatusOK {
		t.Errorf("healthz: %d", code)
	}
	s.SetReady(echoInfer)
	if code, _ := do(t, srv.URL, "GET", "/readyz", ""); code != http.StatusOK {
		t.Errorf("readyz once loaded: %d, want 200", code)
	}

	code, body := do(t, srv.URL, "POST", "/infer", `{"text":"hi"}`)
	var a echoAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil || code != http.StatusOK {
		t.Fatalf("infer: %d %s (%v)", code, body, err)
	}
	want := echoAnswer{Text: "hi", Identity: Identity{Cluster: "edge-b", Pod: "detector-1", Namespace: "cars", Node: "node-a"}}
	if a != want {
		t.Errorf("answer %+v, want %+v", a, want)
	}
	if !strings.Contains(body, `"cluster":"edge-b"`) || !strings.Contains(body, `"pod":"detector-1"`) {
		t.Errorf("answer %s lacks the flat identity fields", body)
	}

	for _, tt := range []struct {
		name, method, body string
		code               int
		errorHas           string
	}{
		{"empty text", "POST", `{"text":""}`, 400, "text: empty"},
		{"not JSON", "POST", `{text`, 400, "decoding the request"},
		{"unknown field", "POST", `{"text":"a","other":1}`, 400, "unknown field"},
		{"trailing data", "POST", `{"text":"a"} {}`, 400, "after the JSON value"},
		{"too large", "POST", `{"text":"` + strings.Repeat("a", 100) + `"}`, 413, "exceeds the limit of 64"},
		{"model error", "POST", `{"text":"fail"}`, 500, "the model broke"},
	} {
		code, body := do(t, srv.URL, tt.method, "/infer", tt.body)
		var e ErrorAnswer
		_ = json.Unmarshal([]byte(body), &e)
		if code != tt.code || !strings.Contains(e.Error, tt.errorHas) {
			t.Errorf("%s: %d %s, want %d with an error saying %q", tt.name, code, body, tt.code, tt.errorHas)
		}
	}
	// A body of unknown length is cut at the limit too.
	req, err := http.NewRequest("POST", srv.URL+"/infer", io.MultiReader(strings.NewReader(`{"text":"`), strings.NewReader(strings.Repeat("a", 100)+`"}`)))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusRequestEntityTooLarge || req.ContentLength != 0 {
		t.Errorf("streamed body over the limit: %d (length %d), want 413", resp.StatusCode, req.ContentLength)
	}
	if code, _ := do(t, srv.URL, "GET", "/infer", ""); code == http.StatusOK {
		t.Error("GET /infer answered 200")
	}
}

// TestRunDrains: when the context ends, a request in flight still gets its answer and new
// connections are refused.
func TestRunDrains(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	s := &Service{Name: "slow"}
	s.SetReady(func(context.Context, []byte, Identity) (any, error) {
		close(started)
		<-release
		return echoAnswer{Text: "done"}, nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- s.Run(ctx, addr) }()
	url := "http://" + addr
	var up error
	for range 100 {
		var c net.Conn
		if c, up = net.Dial("tcp", addr); up == nil {
			c.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if up != nil {
		t.Fatal(up)
	}
	answered := make(chan string, 1)
	go func() {
		_, body := do(t, url, "POST", "/infer", `{}`)
		answered <- body
	}()
	<-started
	cancel()
	// New connections are refused once the server stops listening.
	var refused error
	for range 100 {
		var c net.Conn
		if c, refused = net.Dial("tcp", addr); refused != nil {
			break
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	if refused == nil {
		t.Error("still accepting connections after the context ended")
	}
	close(release)
	if body := <-answered; !strings.Contains(body, `"text":"done"`) {
		t.Errorf("the request in flight got %q, want its answer", body)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Run: %v", err)
	}
}
