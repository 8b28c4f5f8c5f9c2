package monitor

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/cloverenclave/clover/config"
	"github.com/cloverenclave/clover/monitor/rules"
)

// Defaults of Config.
const (
	DefaultListen       = "127.0.0.1:7401"
	DefaultData         = "./clover-monitor"
	DefaultName         = "clover-monitor"
	DefaultPollInterval = 500 * time.Millisecond
	DefaultProbeEvery   = time.Minute
	DefaultProbeTimeout = 30 * time.Second
	DefaultProbeSubject = "clover-canary-probe"
	DefaultProbeFields  = "email"
)

// Config is the monitor's configuration. Everything but the log's URL and
// key has a default, so that the monitor starts with flags alone.
type Config struct {
	// Name is the monitor's name: the name of its witness and report keys,
	// e.g. "monitor.auditor.example". Letters, digits and . - _ /.
	Name string `yaml:"name"`
	// Data is the monitor's own directory: its key, database and state.
	Data   string `yaml:"data"`
	Listen string `yaml:"listen"`
	Log    Log    `yaml:"log"`
	// Gateway is the enclave's gateway, which the canary probes.
	Gateway Gateway `yaml:"gateway"`
	Canary  Canary  `yaml:"canary"`
	// Rules are the detection rules; empty means the default set.
	Rules []rules.Rule `yaml:"rules"`
	// Webhooks receive every new incident.
	Webhooks []Webhook `yaml:"webhooks"`
	// OperatorsFile lists who may read and handle incidents: one "name
	// token" per line (DATA/operators by default, made with one operator,
	// "admin", on first start).
	OperatorsFile string `yaml:"operators_file"`
}

// Log says which log to follow.
type Log struct {
	// URL is where the log is served in the C2SP tlog-tiles layout, e.g.
	// "https://clover.example/log/".
	URL string `yaml:"url"`
	// Key is the log's note verifier key (`clover log key` at the enclave).
	Key string `yaml:"key"`
	// PollInterval is how often the checkpoint is fetched.
	PollInterval time.Duration `yaml:"poll_interval"`
	// RequireCosignature makes a published checkpoint that lacks this
	// monitor's cosignature an incident: set it once the enclave's
	// audit_log.witnesses names this monitor.
	RequireCosignature bool `yaml:"require_cosignature"`
}

// Gateway is the enclave's gateway.
type Gateway struct {
	URL string `yaml:"url"`
}

// Canary configures the canary probes: with an identity that has no
// permissions, the monitor tries a forbidden read every Every and expects
// a 403 and the matching denial in the log within Timeout.
type Canary struct {
	// TokenFile holds the canary identity's bearer token (mode 0600).
	// Empty: no probes.
	TokenFile string        `yaml:"token_file"`
	Every     time.Duration `yaml:"every"`
	Timeout   time.Duration `yaml:"timeout"`
	// Subject is the subject id the canary tries to read, and Fields the
	// fields it asks for.
	Subject string `yaml:"subject"`
	Fields  string `yaml:"fields"`
	// Purpose is the Clover-Purpose header of the probe.
	Purpose string `yaml:"purpose"`
}

// Webhook is a notification target: new incidents are POSTed to URL as
// JSON, signed with HMAC-SHA256 under the secret read from SecretFile.
type Webhook struct {
	Name       string `yaml:"name"`
	URL        string `yaml:"url"`
	SecretFile string `yaml:"secret_file"`
}

// DefaultConfig returns the configuration with every default set.
func DefaultConfig() *Config {
	return &Config{
		Name:   DefaultName,
		Data:   DefaultData,
		Listen: DefaultListen,
		Log:    Log{PollInterval: DefaultPollInterval},
		Canary: Canary{Every: DefaultProbeEvery, Timeout: DefaultProbeTimeout, Subject: DefaultProbeSubject,
			Fields: DefaultProbeFields, Purpose: "support"},
	}
}

// ParseConfig reads a configuration file's bytes over the defaults and
// validates it; name is the file name for error messages, which give the
// line of the key at fault.
func ParseConfig(data []byte, name string) (*Config, error) {
	c := DefaultConfig()
	if err := config.Strict(data, name, c, c.Validate); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadConfig reads a configuration file; an empty path is the defaults.
func LoadConfig(path string) (*Config, error) {
	if path == "" {
		return DefaultConfig(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(b, path)
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$`)

func keyErr(path, format string, args ...any) error {
	return &config.KeyError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks the configuration. The log's URL and key may be empty
// here (flags fill them); Ready checks that they are set.
func (c *Config) Validate() error {
	if !nameRE.MatchString(c.Name) {
		return keyErr("name", "%q must be 1-128 letters, digits, '.', '_', '/' or '-'", c.Name)
	}
	if c.Data == "" {
		return keyErr("data", "the data directory must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return keyErr("listen", "%q is not host:port", c.Listen)
	}
	if c.Log.URL != "" {
		if err := httpURL(c.Log.URL); err != nil {
			return keyErr("log.url", "%v", err)
		}
	}
	if c.Log.PollInterval < 50*time.Millisecond || c.Log.PollInterval > time.Hour {
		return keyErr("log.poll_interval", "%v is outside 50ms..1h", c.Log.PollInterval)
	}
	if c.Gateway.URL != "" {
		if err := httpURL(c.Gateway.URL); err != nil {
			return keyErr("gateway.url", "%v", err)
		}
	}
	if c.Canary.Every < time.Second || c.Canary.Every > 24*time.Hour {
		return keyErr("canary.every", "%v is outside 1s..24h", c.Canary.Every)
	}
	if c.Canary.Timeout < time.Second || c.Canary.Timeout > time.Hour {
		return keyErr("canary.timeout", "%v is outside 1s..1h", c.Canary.Timeout)
	}
	if c.Canary.Subject == "" || strings.ContainsAny(c.Canary.Subject, "/?#% ") {
		return keyErr("canary.subject", "%q must be a non-empty subject id without / ? # %% or spaces", c.Canary.Subject)
	}
	if c.Canary.Fields == "" {
		return keyErr("canary.fields", "name at least one field")
	}
	for i := range c.Rules {
		if err := c.Rules[i].Validate(); err != nil {
			return keyErr(fmt.Sprintf("rules[%d]", i), "%s", strings.TrimPrefix(err.Error(), rules.ErrInvalidConfig.Error()+": "))
		}
	}
	if err := (&rules.Config{Rules: c.Rules}).Validate(); err != nil {
		return keyErr("rules", "%s", strings.TrimPrefix(err.Error(), rules.ErrInvalidConfig.Error()+": "))
	}
	names := map[string]bool{}
	for i, w := range c.Webhooks {
		p := fmt.Sprintf("webhooks[%d]", i)
		if w.Name == "" || names[w.Name] {
			return keyErr(p+".name", "%q must be a unique, non-empty name", w.Name)
		}
		names[w.Name] = true
		if err := httpURL(w.URL); err != nil {
			return keyErr(p+".url", "%v", err)
		}
		if w.SecretFile == "" {
			return keyErr(p+".secret_file", "a webhook needs a secret file (at least 16 bytes) to sign its notifications")
		}
	}
	return nil
}

// Ready checks what the monitor needs to run: the log to follow.
func (c *Config) Ready() error {
	var errs []error
	if c.Log.URL == "" {
		errs = append(errs, errors.New("no log to follow: set log.url or --log"))
	}
	if c.Log.Key == "" {
		errs = append(errs, errors.New("no log verifier key: set log.key or --log-key (`clover log key` at the enclave prints it)"))
	}
	if c.Canary.TokenFile != "" && c.Gateway.URL == "" {
		errs = append(errs, errors.New("a canary token file is set but no gateway to probe: set gateway.url or --gateway"))
	}
	return errors.Join(errs...)
}

func httpURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL with a host", s)
	}
	return nil
}

// Path resolves a file name of the configuration: relative names are
// taken in the data directory.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Data, p)
}
