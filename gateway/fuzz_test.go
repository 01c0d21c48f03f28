package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzGateway sends arbitrary ids, paths, queries and tokens: the gateway never panics,
// never reaches the pod without the client's right token, and a 307 always points at the
// serving cluster's endpoint, whatever the path holds. Run with:
// go test -run '^$' -fuzz FuzzGateway ./gateway/
func FuzzGateway(f *testing.F) {
	for _, seed := range []struct{ id, rest, query, token string }{
		{"car-a", "/infer", "x=1", "token-a"},
		{"car-r", "//evil.example/x", "", "token-r"},
		{"car-r", "/%2F%2Fevil.example", "a=%00", "token-r"},
		{"car-a", "/../../x", "", "token-b"},
		{"car-a", "/a%zz", "", "token-a"},
		{"Car_A", "/", "", "token-a"},
		{"car-a", "@evil.example/", "", "token-a"},
		{"car-r", "/x#frag", "q=http://evil", "token-r"},
	} {
		f.Add(seed.id, seed.rest, seed.query, seed.token)
	}
	pod := newUpstream(f, "svc-1")
	fx := newFixture(f, Options{}, map[string]Route{
		"car-a": {Kind: Local, Cluster: "edge-a", Backends: []Backend{pod.backend()}},
		"car-r": {Kind: Remote, Cluster: "edge-b", Endpoint: "http://edge-b.example:8090"},
	})
	handler := fx.g.Handler()
	f.Fuzz(func(t *testing.T, id, rest, query, token string) {
		target := "/v1/clients/" + id + "/service" + rest
		if query != "" {
			target += "?" + query
		}
		u, err := url.ParseRequestURI(target)
		if err != nil || strings.ContainsAny(token, "\r\n\x00") {
			return // not a request a client could send
		}
		req := &http.Request{Method: http.MethodGet, URL: u, RequestURI: target, Header: http.Header{}, Host: "edge-a.example",
			RemoteAddr: "192.0.2.1:40000", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody}
		req.Header.Set("Authorization", "Bearer "+token)
		before := pod.served.Load()
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		reached := pod.served.Load() != before
		rightToken := tokens[id] != "" && token == tokens[id]
		if reached && !rightToken {
			t.Fatalf("%s with token %q reached the pod (status %d)", target, token, rec.Code)
		}
		if rec.Code == http.StatusTemporaryRedirect {
			loc, err := url.Parse(rec.Header().Get("Location"))
			if err != nil || loc.Scheme != "http" || loc.Host != "edge-b.example:8090" || !strings.HasPrefix(loc.EscapedPath(), "/v1/clients/car-r/service") {
				t.Fatalf("%s redirected to %q (%v): want edge-b.example:8090/v1/clients/car-r/service…", target, rec.Header().Get("Location"), err)
			}
			if !rightToken {
				t.Fatalf("%s with token %q was redirected", target, token)
			}
		}
	})
}
