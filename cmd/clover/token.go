package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/cloverenclave/clover/authn"
	"github.com/spf13/cobra"
)

func newTokenCmd() *cobra.Command {
	var (
		flags  configFlags
		claims authn.TokenClaims
		roles  string
		ttl    time.Duration
	)
	c := &cobra.Command{
		Use:   "token --sub SUB --roles R1,R2 --country CC [--team T] [--ttl 1h]",
		Short: "Mint a bearer token from the built-in development issuer",
		Long: `Mints a token signed by the development issuer whose key lives in DATA/dev-issuer/.
The server accepts it when its configuration uses the development issuer
(identity.dev_issuer: true, the default). Never use the development issuer in
production: anyone with the data directory can mint any identity.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := flags.load()
			if err != nil {
				return err
			}
			if !cfg.Identity.DevIssuer {
				return usagef("the configuration does not use the development issuer (identity.dev_issuer is false); get tokens from your identity provider")
			}
			for _, r := range strings.Split(roles, ",") {
				if r = strings.TrimSpace(r); r != "" {
					claims.Roles = append(claims.Roles, r)
				}
			}
			if claims.Subject == "" || len(claims.Roles) == 0 || claims.Country == "" {
				return usagef("--sub, --roles and --country are required")
			}
			dev, err := authn.LoadOrCreateDevIssuer(filepath.Join(cfg.Data, "dev-issuer"), cfg.Identity.Issuer, cfg.Identity.Audience)
			if err != nil {
				return err
			}
			tok, err := dev.Mint(claims, ttl, time.Now())
			if err != nil {
				return usageError{err}
			}
			fmt.Fprintln(c.OutOrStdout(), tok)
			return nil
		},
	}
	flags.register(c)
	c.Flags().StringVar(&claims.Subject, "sub", "", "subject (the caller's identity), e.g. support-ie-1")
	c.Flags().StringVar(&roles, "roles", "", "comma-separated roles, e.g. support or ingest,service")
	c.Flags().StringVar(&claims.Country, "country", "", "country the caller works from (ISO 3166-1 alpha-2)")
	c.Flags().StringVar(&claims.Team, "team", "", "team (optional)")
	c.Flags().DurationVar(&ttl, "ttl", time.Hour, "lifetime of the token (1s to 24h)")
	return c
}
