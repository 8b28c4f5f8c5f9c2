package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cloverenclave/clover/config"
	"github.com/cloverenclave/clover/policy"
	"github.com/cloverenclave/clover/schema"
)

func newPolicyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "Check, test and export the access policies (Cedar)",
		Long: `The gateway decides, field by field, in which form a caller may see each field
(raw, pseudonym, generalised, masked or withheld) with the Cedar policies of a
directory: every *.cedar file in it. Tests of the policies live beside them in
*.test.yaml files.`,
	}
	c.AddCommand(newPolicyCheckCmd(), newPolicyTestCmd(), newPolicyExportCmd())
	return c
}

func newPolicyCheckCmd() *cobra.Command {
	var configFile string
	c := &cobra.Command{
		Use:   "check DIR",
		Short: "Parse the policies of DIR and check them against the entity model and the schema",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			dir := args[0]
			sch, purposes, err := policyConfig(configFile)
			if err != nil {
				return err
			}
			set, err := loadPolicies(c.ErrOrStderr(), dir, sch, purposes)
			if err != nil {
				return err
			}
			c.Printf("%s: %d policies, digest %s\n", dir, set.Len(), set.Digest())
			return nil
		},
	}
	c.Flags().StringVar(&configFile, "config", "", "configuration file whose schema and purposes the policies are checked against (default: the built-in ones)")
	return c
}

func newPolicyTestCmd() *cobra.Command {
	var (
		configFile string
		verbose    bool
	)
	c := &cobra.Command{
		Use:   "test DIR",
		Short: "Run the policy tests (*.test.yaml) of DIR against its policies",
		Long: `Run the policy tests (*.test.yaml) of DIR against its policies. Forms are
decided as if every field could take every form (except fields whose method is
"withhold", which are raw or nothing); the gateway uses the real capabilities
of each field's pseudonymisation method.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			dir := args[0]
			sch, purposes, err := policyConfig(configFile)
			if err != nil {
				return err
			}
			set, err := loadPolicies(c.ErrOrStderr(), dir, sch, purposes)
			if err != nil {
				return err
			}
			results, err := policy.RunTests(os.DirFS(dir), set, sch, policy.AllForms)
			if err != nil {
				if n := printProblems(c.ErrOrStderr(), dir, err); n > 0 {
					return fmt.Errorf("%s: %d problem(s) in the test files", dir, n)
				}
				return err
			}
			if len(results) == 0 {
				return fmt.Errorf("%s: no test cases (*.test.yaml)", dir)
			}
			failed := 0
			for _, r := range results {
				r.File = filepath.Join(dir, r.File)
				switch {
				case !r.Passed:
					failed++
					c.Println(r.String())
				case verbose:
					c.Println("ok " + r.String())
				}
			}
			c.Printf("%d passed, %d failed\n", len(results)-failed, failed)
			if failed > 0 {
				return fmt.Errorf("%d of %d policy tests failed", failed, len(results))
			}
			return nil
		},
	}
	c.Flags().StringVar(&configFile, "config", "", "configuration file whose schema the tests use (default: the built-in schema)")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "also list the cases that pass")
	return c
}

func newPolicyExportCmd() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "export DIR",
		Short: "Write the built-in policies and their tests into DIR, to start from",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			dir := args[0]
			src := policy.DefaultFS()
			names, err := fs.Glob(src, "*")
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return usageError{err}
			}
			if !force {
				for _, n := range names {
					if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
						return usageError{fmt.Errorf("%s already exists (use --force to overwrite)", filepath.Join(dir, n))}
					}
				}
			}
			for _, n := range names {
				data, err := fs.ReadFile(src, n)
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, n), data, 0o644); err != nil {
					return err
				}
				c.Println(filepath.Join(dir, n))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&force, "force", false, "overwrite files that exist")
	return c
}

// policyConfig is the field schema and the purposes policies are checked
// against: the configuration's, or the built-in ones. A bad configuration is
// a usage error.
func policyConfig(configFile string) (*schema.Schema, []string, error) {
	cfg := config.Default()
	if configFile != "" {
		var err error
		if cfg, err = (&configFlags{file: configFile}).load(); err != nil {
			return nil, nil, err
		}
	}
	sch, err := schema.New(cfg.Schema)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("schema: %w", err)}
	}
	return sch, cfg.Policy.Purposes, nil
}

// loadPolicies loads and checks the policies of dir (entity model, schema,
// purposes), listing every problem
// on w as DIR/file:line:column. A missing directory is a usage error; bad
// policies are a failure.
func loadPolicies(w io.Writer, dir string, sch *schema.Schema, purposes []string) (*policy.Set, error) {
	if st, err := os.Stat(dir); err != nil {
		return nil, usageError{err}
	} else if !st.IsDir() {
		return nil, usageError{fmt.Errorf("%s is not a directory", dir)}
	}
	set, err := policy.Load(os.DirFS(dir))
	if err == nil {
		err = errors.Join(policy.Check(set, sch), policy.CheckPurposes(set, purposes))
	}
	if err != nil {
		if n := printProblems(w, dir, err); n > 0 {
			return nil, fmt.Errorf("%s: %d problem(s) in the policies", dir, n)
		}
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return set, nil
}

// printProblems lists positioned errors (policy.Errors, *policy.Error, or
// several joined) on w with their file joined to dir, and returns how many
// there were: 0 when err has none.
func printProblems(w io.Writer, dir string, err error) int {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		n := 0
		for _, sub := range j.Unwrap() {
			n += printProblems(w, dir, sub)
		}
		return n
	}
	var es policy.Errors
	var e *policy.Error
	switch {
	case errors.As(err, &es):
	case errors.As(err, &e):
		es = policy.Errors{e}
	default:
		return 0
	}
	for _, e := range es {
		p := *e
		if p.File != "" {
			p.File = filepath.Join(dir, p.File)
		}
		fmt.Fprintln(w, p.Error())
	}
	return len(es)
}
