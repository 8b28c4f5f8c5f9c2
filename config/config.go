// Package config is Clover's configuration file: its YAML form, the built-in
// defaults, strict parsing (an unknown key, a duplicate key or a wrong type is
// an error naming the file and line) and validation. It never reads files,
// the environment or flags itself; cmd/clover does that and hands it bytes.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/enclave"
	"github.com/cloverenclave/clover/schema"
	"github.com/cloverenclave/clover/transfer"
	"go.yaml.in/yaml/v3"
)

// MaxFileBytes caps the size of a configuration file.
const MaxFileBytes = 1 << 20

// Config is the whole configuration of an enclave process.
type Config struct {
	// Data is the data directory: embedded stores, key files, the development
	// issuer's key. Relative paths elsewhere are resolved against it.
	Data      string         `yaml:"data"`
	Server    Server         `yaml:"server"`
	Enclave   Enclave        `yaml:"enclave"`
	Schema    []schema.Field `yaml:"schema"`
	Identity  Identity       `yaml:"identity"`
	Policy    Policy         `yaml:"policy"`
	Transfers Transfers      `yaml:"transfers"`
	AuditLog  AuditLog       `yaml:"audit_log"`
}

// AuditLog configures the audit log beyond its defaults.
type AuditLog struct {
	// Witnesses must cosign each checkpoint before it is published (C2SP
	// tlog-witness), typically an independent `clover monitor`. Empty: the
	// log publishes its checkpoints unwitnessed.
	Witnesses []Witness `yaml:"witnesses,omitempty"`
	// WitnessQuorum is how many of the witnesses must cosign (0: all).
	WitnessQuorum int `yaml:"witness_quorum,omitempty"`
	// JournalSegmentBytes is the size at which the journal starts a new
	// segment (0: auditlog.DefaultJournalSegmentBytes, 64 MiB).
	JournalSegmentBytes int64 `yaml:"journal_segment_bytes,omitempty"`
	// JournalKeepSegments keeps that many segments the tree already holds
	// (0: delete them as soon as a checkpoint covers them).
	JournalKeepSegments int `yaml:"journal_keep_segments,omitempty"`
	// JournalSyncInterval is the least time between the starts of two
	// group commits of the journal while appends keep coming (0:
	// auditlog.DefaultJournalSyncInterval, 2ms). Fewer, larger syncs cost
	// less CPU; each append may wait up to the interval more.
	JournalSyncInterval time.Duration `yaml:"journal_sync_interval,omitempty"`
}

// Witness is one witness of the audit log.
type Witness struct {
	Name string `yaml:"name"`
	// URL is the witness's base URL (add-checkpoint is under it).
	URL string `yaml:"url"`
	// Key is the witness's cosignature verifier key (`clover monitor key`).
	Key string `yaml:"key"`
}

// Transfers configures the destinations data may be transferred to.
type Transfers struct {
	Destinations []transfer.Destination `yaml:"destinations"`
}

// Policy configures field-level authorization.
type Policy struct {
	// Dir is a directory of Cedar policy files (*.cedar) and their tests
	// (*.test.yaml); empty means the built-in default policy set.
	Dir string `yaml:"dir,omitempty"`
	// Purposes are the values callers may give in the Clover-Purpose header.
	Purposes []string `yaml:"purposes"`
}

// DefaultPurposes are the purposes of the default configuration.
var DefaultPurposes = []string{"service", "support", "trust-and-safety", "fraud-prevention", "analytics", "engineering", "legal"}

// Server configures the HTTP listener.
type Server struct {
	Listen       string `yaml:"listen"`
	MaxBodyBytes int64  `yaml:"max_body_bytes"`
	LogFormat    string `yaml:"log_format"`
	// RecordCacheBytes bounds the in-memory cache of recently read sealed
	// records and their data keys (0 disables it).
	RecordCacheBytes int64 `yaml:"record_cache_bytes"`
}

// Enclave names the jurisdictions, sites and placement rules.
type Enclave struct {
	Name          string         `yaml:"name"`
	Jurisdictions []string       `yaml:"jurisdictions"`
	Sites         []Site         `yaml:"sites"`
	Placement     []enclave.Rule `yaml:"placement"`
	DefaultSite   string         `yaml:"default_site"`
}

// Site is an enclave site with its storage.
type Site struct {
	Name    string  `yaml:"name"`
	Country string  `yaml:"country"`
	Replica string  `yaml:"replica,omitempty"`
	Storage Storage `yaml:"storage"`
}

// Storage says where a site keeps its records and data keys: an embedded
// SQLite directory (the default, DATA/sites/<site>) or a PostgreSQL DSN.
type Storage struct {
	Embedded string `yaml:"embedded,omitempty"`
	Postgres string `yaml:"postgres,omitempty"`
}

// Identity says how bearer tokens are verified.
type Identity struct {
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	// JWKSFile or JWKSURL name the identity provider's keys; DevIssuer uses
	// the built-in development issuer instead. Exactly one is set.
	JWKSFile  string `yaml:"jwks_file,omitempty"`
	JWKSURL   string `yaml:"jwks_url,omitempty"`
	DevIssuer bool   `yaml:"dev_issuer"`
}

// Defaults used when the configuration does not say otherwise.
const (
	DefaultData         = "./clover-data"
	DefaultListen       = "127.0.0.1:7400"
	DefaultMaxBodyBytes = 1 << 20
	DefaultCacheBytes   = 256 << 20
	DevIssuerName       = "urn:clover:dev-issuer"
	DefaultAudience     = "clover"
)

// Default returns the built-in configuration: the EU/EEA enclave of the
// articles with embedded storage and the development issuer.
func Default() *Config {
	e := enclave.Default()
	c := &Config{
		Data:   DefaultData,
		Server: Server{Listen: DefaultListen, MaxBodyBytes: DefaultMaxBodyBytes, LogFormat: "text", RecordCacheBytes: DefaultCacheBytes},
		Enclave: Enclave{
			Name:          e.Name,
			Jurisdictions: e.Jurisdictions,
			Placement:     e.Placement,
			DefaultSite:   e.DefaultSite,
		},
		Schema:    schema.Default(),
		Identity:  Identity{Issuer: DevIssuerName, Audience: DefaultAudience, DevIssuer: true},
		Policy:    Policy{Purposes: append([]string(nil), DefaultPurposes...)},
		Transfers: Transfers{Destinations: transfer.Defaults()},
	}
	for _, s := range e.Sites {
		c.Enclave.Sites = append(c.Enclave.Sites, Site{Name: s.Name, Country: s.Country, Replica: s.Replica})
	}
	c.fillDefaults()
	return c
}

// fillDefaults gives every site without storage its embedded directory,
// so that the effective configuration says where each site's data lives.
func (c *Config) fillDefaults() {
	for i, s := range c.Enclave.Sites {
		if s.Storage.Embedded == "" && s.Storage.Postgres == "" && s.Name != "" {
			c.Enclave.Sites[i].Storage.Embedded = "sites/" + s.Name
		}
	}
}

// Error is a configuration problem tied to a place in a file.
type Error struct {
	File string
	Line int // 0 when unknown
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	default:
		return e.Msg
	}
}

// Errors is a list of problems found in one file.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Parse reads a configuration from data, on top of the defaults, and
// validates it. name is the file name used in error messages.
func Parse(data []byte, name string) (*Config, error) {
	c := Default()
	err := Strict(data, name, c, func() error {
		c.fillDefaults()
		return c.Validate()
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Strict decodes one YAML document from data into out, which holds the
// defaults, rejecting unknown keys, wrong types and more than one document,
// then calls validate. Every error names the file (name) and, where it can
// be found, the line: a validation error that has a method KeyPath() string
// (such as "enclave.sites[1].country") is placed at that key. Other
// components' configuration files (the monitor's) use it too.
func Strict(data []byte, name string, out any, validate func() error) error {
	if len(data) > MaxFileBytes {
		return &Error{File: name, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileBytes)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return yamlErrors(err, name)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return yamlErrors(err, name)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return &Error{File: name, Line: extra.Line, Msg: "more than one YAML document; a configuration file holds exactly one"}
	}
	if validate == nil {
		return nil
	}
	if err := validate(); err != nil {
		var kp interface{ KeyPath() string }
		if errors.As(err, &kp) {
			return &Error{File: name, Line: lineOf(&root, kp.KeyPath()), Msg: err.Error()}
		}
		return &Error{File: name, Msg: err.Error()}
	}
	return nil
}

// KeyError is a validation problem at a key path such as "log.url", for
// configurations decoded with Strict.
type KeyError struct {
	Path string
	Msg  string
}

func (e *KeyError) Error() string   { return e.Path + ": " + e.Msg }
func (e *KeyError) KeyPath() string { return e.Path }

var (
	lineRE    = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	goTypeRE  = regexp.MustCompile(` into (\[\])?\*?[a-z]+\.[A-Za-z]+`)
	purposeRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,39}$`)
)

// yamlErrors turns the YAML library's errors into file:line messages without
// Go type names.
func yamlErrors(err error, name string) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := lineRE.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			return &Error{File: name, Line: n, Msg: m[2]}
		}
		return &Error{File: name, Msg: msg}
	}
	var out Errors
	for _, e := range te.Errors {
		m := lineRE.FindStringSubmatch(e)
		if m == nil {
			out = append(out, &Error{File: name, Msg: e})
			continue
		}
		n, _ := strconv.Atoi(m[1])
		msg := m[2]
		if u := unknownRE.FindStringSubmatch(msg); u != nil {
			msg = fmt.Sprintf("unknown key %q", u[1])
		} else {
			msg = "wrong type: " + goTypeRE.ReplaceAllString(msg, " into a value of another type")
		}
		out = append(out, &Error{File: name, Line: n, Msg: msg})
	}
	return out
}

// pathError is a validation problem at a key path such as
// "enclave.sites[1].country".
type pathError struct {
	path string
	msg  string
}

func (e *pathError) Error() string   { return e.path + ": " + e.msg }
func (e *pathError) KeyPath() string { return e.path }

// Validate checks the whole configuration.
func (c *Config) Validate() error {
	if c.Data == "" {
		return &pathError{"data", "the data directory must not be empty"}
	}
	if _, _, err := net.SplitHostPort(c.Server.Listen); err != nil {
		return &pathError{"server.listen", fmt.Sprintf("%q is not host:port", c.Server.Listen)}
	}
	if c.Server.MaxBodyBytes < 1024 || c.Server.MaxBodyBytes > 64<<20 {
		return &pathError{"server.max_body_bytes", fmt.Sprintf("%d is outside 1024..67108864", c.Server.MaxBodyBytes)}
	}
	if c.Server.RecordCacheBytes < 0 || c.Server.RecordCacheBytes > 64<<30 {
		return &pathError{"server.record_cache_bytes", fmt.Sprintf("%d is outside 0..68719476736", c.Server.RecordCacheBytes)}
	}
	if c.Server.LogFormat != "text" && c.Server.LogFormat != "json" {
		return &pathError{"server.log_format", fmt.Sprintf("%q must be text or json", c.Server.LogFormat)}
	}
	if err := c.EnclaveConfig().Validate(); err != nil {
		var fe *enclave.FieldError
		if errors.As(err, &fe) {
			return &pathError{fe.Path, fe.Msg}
		}
		return err
	}
	for i, s := range c.Enclave.Sites {
		p := fmt.Sprintf("enclave.sites[%d].storage", i)
		if s.Storage.Embedded != "" && s.Storage.Postgres != "" {
			return &pathError{p, "set either embedded or postgres, not both"}
		}
		if d := s.Storage.Postgres; d != "" {
			if _, err := parseDSN(d); err != nil {
				return &pathError{p + ".postgres", err.Error()}
			}
		}
	}
	sch, err := schema.New(c.Schema)
	if err != nil {
		var fe *schema.FieldError
		if errors.As(err, &fe) {
			return &pathError{fmt.Sprintf("schema[%d].%s", fe.Index, fe.Key), fe.Msg}
		}
		return err
	}
	if err := c.validateAuditLog(); err != nil {
		return err
	}
	if err := transfer.ValidateAll(c.Transfers.Destinations, sch); err != nil {
		var pe *transfer.PathError
		if errors.As(err, &pe) {
			return &pathError{pe.Path, pe.Msg}
		}
		return err
	}
	id := c.Identity
	if id.Issuer == "" {
		return &pathError{"identity.issuer", "the token issuer must be set"}
	}
	if id.Audience == "" {
		return &pathError{"identity.audience", "the token audience must be set"}
	}
	n := 0
	for _, set := range []bool{id.JWKSFile != "", id.JWKSURL != "", id.DevIssuer} {
		if set {
			n++
		}
	}
	if n != 1 {
		return &pathError{"identity", "set exactly one of jwks_file, jwks_url or dev_issuer: true"}
	}
	if len(c.Policy.Purposes) == 0 {
		return &pathError{"policy.purposes", "at least one purpose is required"}
	}
	seen := map[string]bool{}
	for i, p := range c.Policy.Purposes {
		if !purposeRE.MatchString(p) {
			return &pathError{fmt.Sprintf("policy.purposes[%d]", i), fmt.Sprintf("%q must be 1-40 characters of a-z, 0-9, '_' and '-', starting with a letter", p)}
		}
		if seen[p] {
			return &pathError{fmt.Sprintf("policy.purposes[%d]", i), fmt.Sprintf("purpose %q is listed twice", p)}
		}
		seen[p] = true
	}
	if id.JWKSURL != "" {
		u, err := url.Parse(id.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return &pathError{"identity.jwks_url", fmt.Sprintf("%q is not an http(s) URL", id.JWKSURL)}
		}
	}
	return nil
}

func parseDSN(dsn string) (*url.URL, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, errors.New("must be a URL of the form postgres://user@host:port/database")
	}
	return u, nil
}

// EnclaveConfig returns the enclave part of the configuration.
func (c *Config) EnclaveConfig() enclave.Config {
	e := enclave.Config{
		Name:          c.Enclave.Name,
		Jurisdictions: c.Enclave.Jurisdictions,
		Placement:     c.Enclave.Placement,
		DefaultSite:   c.Enclave.DefaultSite,
	}
	for _, s := range c.Enclave.Sites {
		e.Sites = append(e.Sites, enclave.Site{Name: s.Name, Country: s.Country, Replica: s.Replica})
	}
	return e
}

// Marshal returns the configuration as YAML with secrets (database
// passwords) redacted.
func (c *Config) Marshal() ([]byte, error) {
	cp := *c
	cp.Enclave.Sites = append([]Site(nil), c.Enclave.Sites...)
	for i, s := range cp.Enclave.Sites {
		if u, err := parseDSN(s.Storage.Postgres); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "REDACTED")
				cp.Enclave.Sites[i].Storage.Postgres = u.String()
			}
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&cp); err != nil {
		return nil, err
	}
	enc.Close()
	return buf.Bytes(), nil
}

// lineOf finds the line of a key path ("a.b[2].c") in a YAML document, or 0.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, seg := range strings.Split(path, ".") {
		key, idx := seg, -1
		if i := strings.IndexByte(seg, '['); i >= 0 && strings.HasSuffix(seg, "]") {
			key = seg[:i]
			idx, _ = strconv.Atoi(seg[i+1 : len(seg)-1])
		}
		next := (*yaml.Node)(nil)
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					line = n.Content[i].Line
					next = n.Content[i+1]
					break
				}
			}
		}
		if next == nil {
			return line
		}
		n = next
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

// validateAuditLog checks the witnesses: names unique, URLs and keys usable
// (auditlog does the deep check of keys and URLs), the quorum in range.
func (c *Config) validateAuditLog() error {
	seen := map[string]bool{}
	for i, w := range c.AuditLog.Witnesses {
		p := fmt.Sprintf("audit_log.witnesses[%d]", i)
		if w.Name == "" {
			return &pathError{p + ".name", "a witness needs a name"}
		}
		if seen[w.Name] {
			return &pathError{p + ".name", fmt.Sprintf("%q is named twice", w.Name)}
		}
		seen[w.Name] = true
		if err := (auditlog.Witness{Name: w.Name, URL: w.URL, Key: w.Key}).Validate(); err != nil {
			var we *auditlog.WitnessError
			if errors.As(err, &we) {
				return &pathError{p + "." + we.Field, we.Msg}
			}
			return &pathError{p, err.Error()}
		}
	}
	if b := c.AuditLog.JournalSegmentBytes; b != 0 && b < auditlog.MinJournalSegmentBytes {
		return &pathError{"audit_log.journal_segment_bytes", fmt.Sprintf("%d is below the minimum %d (0 means the default, %d)", b, auditlog.MinJournalSegmentBytes, auditlog.DefaultJournalSegmentBytes)}
	}
	if d := c.AuditLog.JournalSyncInterval; d < 0 || d > auditlog.MaxJournalSyncInterval {
		return &pathError{"audit_log.journal_sync_interval", fmt.Sprintf("%v is outside 0..%v (0 means the default, %v)", d, auditlog.MaxJournalSyncInterval, auditlog.DefaultJournalSyncInterval)}
	}
	if k := c.AuditLog.JournalKeepSegments; k < 0 {
		return &pathError{"audit_log.journal_keep_segments", fmt.Sprintf("%d must not be negative", k)}
	}
	if q := c.AuditLog.WitnessQuorum; q < 0 || q > len(c.AuditLog.Witnesses) {
		return &pathError{"audit_log.witness_quorum", fmt.Sprintf("%d is outside 0..%d (0 means all witnesses)", q, len(c.AuditLog.Witnesses))}
	}
	return nil
}
