package chaincode

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds on what the contract accepts, so that no caller can bloat the world state.
const (
	MaxIDLength       = 63
	MaxTextLength     = 1024
	MaxWorkloadLength = 512
	// MaxArgBytes bounds one argument: a proposal carries metadata, never a manifest.
	MaxArgBytes = 32 << 10
	// MaxCoverageRadiusM is half of Earth's circumference.
	MaxCoverageRadiusM = 20_037_509
)

// digestPattern is a bundle's digest.
var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// idPattern is a DNS label: the same ids Kubernetes accepts for names.
var idPattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func validateID(what, id string) error {
	if id == "" {
		return refuse(CodeInvalid, "%s is empty", what)
	}
	if len(id) > MaxIDLength || !idPattern.MatchString(id) {
		return refuse(CodeInvalid, "%s %q is not a DNS label (lower-case letters, digits and '-', at most %d characters)", what, truncate(id), MaxIDLength)
	}
	return nil
}

func validateLocation(what string, l Location) error {
	if math.IsNaN(l.Lat) || l.Lat < -90 || l.Lat > 90 {
		return refuse(CodeInvalid, "%s latitude %v is outside [-90, 90]", what, l.Lat)
	}
	if math.IsNaN(l.Lon) || l.Lon < -180 || l.Lon > 180 {
		return refuse(CodeInvalid, "%s longitude %v is outside [-180, 180]", what, l.Lon)
	}
	return nil
}

func validateResources(what string, r Resources) error {
	for _, q := range []struct {
		name string
		v    int64
	}{{"cpuMilli", r.CPUMilli}, {"memoryBytes", r.MemoryBytes}, {"gpuSlots", r.GPUSlots}, {"gpuMemoryBytes", r.GPUMemoryBytes}} {
		if q.v < 0 {
			return refuse(CodeInvalid, "%s %s is negative (%d)", what, q.name, q.v)
		}
	}
	return nil
}

func validateText(what, s string, limit int) error {
	if len(s) > limit {
		return refuse(CodeInvalid, "%s is %d bytes, more than %d", what, len(s), limit)
	}
	return nil
}

// Validate checks a registration.
func (r ClusterRegistration) Validate() error {
	if err := validateID("cluster id", r.ID); err != nil {
		return err
	}
	if err := validateLocation("cluster", r.Location); err != nil {
		return err
	}
	if math.IsNaN(r.CoverageRadiusM) || r.CoverageRadiusM < 0 || r.CoverageRadiusM > MaxCoverageRadiusM {
		return refuse(CodeInvalid, "coverage radius %v m is outside [0, %d]", r.CoverageRadiusM, MaxCoverageRadiusM)
	}
	if err := validateEndpoint(r.Endpoint); err != nil {
		return err
	}
	return validateResources("capacity", r.Capacity)
}

// Validate checks a proposal.
func (p Proposal) Validate() error {
	if err := validateID("migration id", p.ID); err != nil {
		return err
	}
	if err := validateID("source cluster id", p.Source); err != nil {
		return err
	}
	if err := validateWorkloadRef(p.Workload); err != nil {
		return err
	}
	if p.BundleDigest != "" && !digestPattern.MatchString(p.BundleDigest) {
		return refuse(CodeInvalid, "bundle digest %q is not sha256: and 64 lower-case hex digits", truncate(p.BundleDigest))
	}
	if err := p.Metadata.validate(); err != nil {
		return err
	}
	switch p.Reason {
	case ReasonClientMobility:
		if p.ClientLocation == nil {
			return refuse(CodeInvalid, "reason %s needs a client location", p.Reason)
		}
	case ReasonInsufficientResources, ReasonManual:
	default:
		return refuse(CodeInvalid, "reason %q is not one of %s, %s, %s", truncate(p.Reason), ReasonClientMobility, ReasonInsufficientResources, ReasonManual)
	}
	if p.ClientLocation != nil {
		if err := validateLocation("client", *p.ClientLocation); err != nil {
			return err
		}
	}
	if p.BidTimeoutMillis < 1 || p.BidTimeoutMillis > MaxBidTimeoutMillis {
		return refuse(CodeInvalid, "bid timeout %d ms is outside [1, %d]", p.BidTimeoutMillis, MaxBidTimeoutMillis)
	}
	return nil
}

// MaxOriginLength bounds an origin: two DNS labels, a UID and the separators fit well within.
const MaxOriginLength = 256

// uidPattern is what a UID may hold (Kubernetes' are UUIDs): no separator, space or
// control character, so that an origin is one unambiguous state key.
var uidPattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// ValidateOrigin checks an origin, "<cluster>/<namespace>/<uid>": it names a key of the
// ledger's state (the service's home), so it is bounded and has exactly that shape.
func ValidateOrigin(origin string) error {
	if origin == "" || len(origin) > MaxOriginLength {
		return refuse(CodeInvalid, "origin must be cluster/namespace/uid of 1 to %d bytes", MaxOriginLength)
	}
	parts := strings.Split(origin, "/")
	if len(parts) != 3 || len(parts[1]) > MaxIDLength || !idPattern.MatchString(parts[1]) || !uidPattern.MatchString(parts[2]) {
		return refuse(CodeInvalid, "origin %q is not cluster/namespace/uid (DNS labels and a UID of letters, digits, '.', '_' and '-')", truncate(origin))
	}
	return validateID("origin cluster id", parts[0])
}

// validateEndpoint accepts an empty endpoint (a cluster that serves no clients) or an absolute
// http(s) URL without user info.
func validateEndpoint(e string) error {
	if e == "" {
		return nil
	}
	if len(e) > MaxWorkloadLength {
		return refuse(CodeInvalid, "endpoint is %d bytes, more than %d", len(e), MaxWorkloadLength)
	}
	u, err := url.Parse(e)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return refuse(CodeInvalid, "endpoint %q is not an http(s) URL with a host", truncate(e))
	}
	return nil
}

func validateWorkloadRef(w string) error {
	if w == "" || len(w) > MaxWorkloadLength {
		return refuse(CodeInvalid, "workload must be kind/namespace/name of at most %d bytes", MaxWorkloadLength)
	}
	parts := strings.Split(w, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return refuse(CodeInvalid, "workload %q is not kind/namespace/name", truncate(w))
	}
	return nil
}

func (m WorkloadMetadata) validate() error {
	if m.SourceIP != "" {
		if _, err := netip.ParseAddr(m.SourceIP); err != nil {
			return refuse(CodeInvalid, "source IP %q is not an IP address", truncate(m.SourceIP))
		}
	}
	if err := validateText("container id", m.ContainerID, MaxIDLength*2+8); err != nil {
		return err
	}
	if m.Image == "" {
		return refuse(CodeInvalid, "image is empty")
	}
	if err := validateText("image", m.Image, MaxWorkloadLength); err != nil {
		return err
	}
	if m.Origin != "" {
		if err := ValidateOrigin(m.Origin); err != nil {
			return err
		}
	}
	if m.ImageSizeBytes < 0 {
		return refuse(CodeInvalid, "image size is negative (%d)", m.ImageSizeBytes)
	}
	return validateResources("demand", Resources{CPUMilli: m.CPUMilli, MemoryBytes: m.MemoryBytes, GPUSlots: m.GPUSlots, GPUMemoryBytes: m.GPUMemoryBytes})
}

// Validate checks a bid.
func (b BidInput) Validate() error {
	if err := validateID("bidding cluster id", b.ClusterID); err != nil {
		return err
	}
	if math.IsNaN(b.Score) || math.IsInf(b.Score, 0) {
		return refuse(CodeInvalid, "score %v is not finite", b.Score)
	}
	return validateText("bid reason", b.Reason, MaxTextLength)
}

func parseTime(what, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, refuse(CodeInvalid, "%s %q is not an RFC 3339 time", what, truncate(s))
	}
	return t, nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Truncate returns s when it is at most n bytes, otherwise as much of its beginning as fits
// in n bytes with "...", never cutting a UTF-8 sequence: texts bound for the ledger
// (MaxTextLength) and bad input quoted in errors stay bounded and readable.
func Truncate(s string, n int) string {
	const ellipsis = "..."
	if len(s) <= n {
		return s
	}
	cut := max(n-len(ellipsis), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis[:min(len(ellipsis), n)]
}

// truncate bounds bad input quoted in an error: 64 bytes of it and "...".
func truncate(s string) string { return Truncate(s, 64+len("...")) }

// decodeArg decodes one JSON argument strictly: bounded size, no unknown fields, nothing
// after the value. A typo in a field name is an error rather than a silent zero.
func decodeArg(what, arg string, v any) error {
	if len(arg) > MaxArgBytes {
		return refuse(CodeInvalid, "%s is %d bytes, more than %d", what, len(arg), MaxArgBytes)
	}
	dec := json.NewDecoder(strings.NewReader(arg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return refuse(CodeInvalid, "decoding %s: %v", what, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return refuse(CodeInvalid, "decoding %s: unexpected data after the JSON value", what)
	}
	return nil
}

// ParseClusterRegistration decodes and validates RegisterCluster's argument.
func ParseClusterRegistration(arg string) (ClusterRegistration, error) {
	var r ClusterRegistration
	if err := decodeArg("cluster registration", arg, &r); err != nil {
		return r, err
	}
	return r, r.Validate()
}

// ParseResources decodes and validates ReportCapacity's argument.
func ParseResources(arg string) (Resources, error) {
	var r Resources
	if err := decodeArg("resources", arg, &r); err != nil {
		return r, err
	}
	return r, validateResources("free", r)
}

// ParseProposal decodes and validates ProposeMigration's argument.
func ParseProposal(arg string) (Proposal, error) {
	var p Proposal
	if err := decodeArg("proposal", arg, &p); err != nil {
		return p, err
	}
	return p, p.Validate()
}

// ParseBid decodes and validates SubmitBid's argument.
func ParseBid(arg string) (BidInput, error) {
	var b BidInput
	if err := decodeArg("bid", arg, &b); err != nil {
		return b, err
	}
	return b, b.Validate()
}

// ParseLedgerConfig decodes and validates InitLedger's argument.
func ParseLedgerConfig(arg string) (LedgerConfig, error) {
	var c LedgerConfig
	if err := decodeArg("ledger configuration", arg, &c); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// ParseAdmission decodes and validates AdmitCluster's argument.
func ParseAdmission(arg string) (AdmissionInput, error) {
	var a AdmissionInput
	if err := decodeArg("admission", arg, &a); err != nil {
		return a, err
	}
	return a, a.Validate()
}

// marshal encodes state and results. Structs encode in field order and the contract stores
// no maps, so every endorser writes the same bytes.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding %T: %w", v, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
