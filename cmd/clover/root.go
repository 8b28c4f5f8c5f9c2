package main

import (
	"io"
	"strings"

	"github.com/spf13/cobra"
)

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "clover",
		Short: "Clover keeps a jurisdiction's personal data inside it, and proves it",
		Long: `Clover is a data-sovereignty enclave: personal data of a jurisdiction's people
is stored, encrypted, at sites in that jurisdiction, and reached only through an
authenticated gateway.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServeCmd(), newConfigCmd(), newTokenCmd(), newPolicyCmd(), newSeedCmd(), newBenchCmd(), newLogCmd(), newVerifyCmd(), newTransferCmd(), newMonitorCmd(), newVersionCmd())
	return root
}

// isCobraUsage recognises cobra's own argument errors (unknown command,
// wrong number of arguments), which it does not type.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires at most", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			c.Printf("clover %s\n", version)
			return nil
		},
	}
}
