package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cloverenclave/clover/config"
	"github.com/spf13/cobra"
)

// configFlags are the flags every command that reads the configuration has.
type configFlags struct {
	file string
	data string
}

func (f *configFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.file, "config", "", "configuration file (YAML); built-in defaults when absent")
	c.Flags().StringVar(&f.data, "data", "", "data directory (default from the configuration: ./clover-data)")
}

// load reads the configuration file, if any, and applies the flags. Any
// problem is a usage error (exit 2).
func (f *configFlags) load() (*config.Config, error) {
	cfg := config.Default()
	if f.file != "" {
		fh, err := os.Open(f.file)
		if err != nil {
			return nil, usageError{fmt.Errorf("configuration: %w", err)}
		}
		defer fh.Close()
		data, err := io.ReadAll(io.LimitReader(fh, config.MaxFileBytes+1))
		if err != nil {
			return nil, usageError{fmt.Errorf("configuration: read %s: %w", f.file, err)}
		}
		cfg, err = config.Parse(data, f.file)
		if err != nil {
			return nil, usageError{errors.New("bad configuration:\n" + err.Error())}
		}
	}
	if f.data != "" {
		cfg.Data = f.data
	}
	if err := cfg.Validate(); err != nil {
		return nil, usageError{fmt.Errorf("bad configuration: %w", err)}
	}
	return cfg, nil
}

func newConfigCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Inspect the configuration"}
	var flags configFlags
	print := &cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration as YAML (secrets redacted)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := flags.load()
			if err != nil {
				return err
			}
			out, err := cfg.Marshal()
			if err != nil {
				return err
			}
			_, err = c.OutOrStdout().Write(out)
			return err
		},
	}
	flags.register(print)
	c.AddCommand(print)
	return c
}
