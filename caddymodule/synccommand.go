package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/directory"
)

// syncUsage is the part of `caddy portcullis --help` about the Google
// Workspace sync.
const syncUsage = `
  caddy portcullis sync <tenant> [--wait] [--timeout 30m]
      Starts a full sync of a tenant pulled from Google Workspace ("sync
      now") and prints its status as JSON; during a sync, the running one
      is reported, not a second started. With --wait, waits for the sync
      to end and exits non-zero if it failed.

  caddy portcullis sync-status <tenant>
      Prints the tenant's sync status as JSON: last start, end, duration,
      result, counts, last error, next run, last activity poll.
`

// syncPollEvery is how often `sync --wait` asks for the status.
const syncPollEvery = time.Second

// addSyncCommands adds sync and sync-status to `caddy portcullis`.
func addSyncCommands(cmd *cobra.Command) {
	// Placed before the paragraph on the admin address, which closes the
	// help text.
	cmd.Long = strings.Replace(cmd.Long, "\nThe admin address is", syncUsage+"\nThe admin address is", 1)
	sync := &cobra.Command{
		Use:   "sync <tenant>",
		Short: "Starts a Google Workspace sync of the tenant now and prints its status",
		Args:  cobra.ExactArgs(1),
		RunE:  runSync,
	}
	sync.Flags().Bool("wait", false, "Wait until the sync ends; exit non-zero if it failed")
	sync.Flags().Duration("timeout", 30*time.Minute, "With --wait: give up waiting after this long (the sync goes on)")
	cmd.AddCommand(sync)
	cmd.AddCommand(&cobra.Command{
		Use:   "sync-status <tenant>",
		Short: "Prints the tenant's Google Workspace sync status",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			st, err := syncRequest(c, http.MethodGet, args[0])
			if err != nil {
				return err
			}
			return printSyncStatus(c.OutOrStdout(), st)
		},
	})
}

func runSync(c *cobra.Command, args []string) error {
	tenant := args[0]
	wait, _ := c.Flags().GetBool("wait")
	timeout, _ := c.Flags().GetDuration("timeout")
	st, err := syncRequest(c, http.MethodPost, tenant)
	if err != nil {
		return err
	}
	if !wait {
		fmt.Fprintf(c.ErrOrStderr(), "Sync of tenant %s started; `caddy portcullis sync-status %s` shows how it ends.\n", tenant, tenant)
		return printSyncStatus(c.OutOrStdout(), st)
	}
	deadline := time.Now().Add(timeout)
	for st.Running {
		if time.Now().After(deadline) {
			_ = printSyncStatus(c.OutOrStdout(), st)
			return fmt.Errorf("the sync of tenant %s still runs after %s (it goes on in the gateway)", tenant, timeout)
		}
		time.Sleep(syncPollEvery)
		if st, err = syncRequest(c, http.MethodGet, tenant); err != nil {
			return err
		}
	}
	if err := printSyncStatus(c.OutOrStdout(), st); err != nil {
		return err
	}
	if st.Result != directory.ResultOK {
		return fmt.Errorf("the sync of tenant %s failed: %s", tenant, st.LastError)
	}
	return nil
}

// syncRequest calls the sync route and decodes the status it answers.
func syncRequest(c *cobra.Command, method, tenant string) (directory.Status, error) {
	var st directory.Status
	body, err := adminRequest(c, method, tenantPath(tenant, "sync"))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("unexpected answer from the admin API: %v", err)
	}
	return st, nil
}

func printSyncStatus(w io.Writer, st directory.Status) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
