package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "portcullis",
		Usage: "token (rotate|disable) <tenant> | events <tenant> [--type ...] | backup FILE | restore FILE",
		Short: "Manages Portcullis tenants of a running gateway",
		Long: `
Manages the Portcullis tenants of a running Caddy through its admin API.

  caddy portcullis token rotate <tenant>
      Creates the tenant's SCIM bearer token, or replaces it: the previous
      token stops working at once. The new token is printed once, on
      stdout; paste it into your identity provider.

  caddy portcullis token disable <tenant>
      Deletes the tenant's SCIM token: every SCIM request gets 401 until
      a new token is made.

  caddy portcullis events <tenant> [--type t1,t2] [--since RFC3339]
                                   [--until RFC3339] [--limit N] [--before CURSOR]
                                   [--format jsonl|csv]
      Lists audit events newest first, one JSON object per line (jsonl,
      the default) or as CSV with a header line. With --all, follows the
      pages to the end. An unknown --type is refused with the list of
      valid ones.
` + backupUsage + `
The admin address is --address, or the one in --config, or the CADDY_ADMIN
environment variable, or localhost:2019.
`,
		CobraFunc: buildPortcullisCommand,
	})
}

func buildPortcullisCommand(cmd *cobra.Command) {
	flags := cmd.PersistentFlags()
	flags.String("address", "", "Admin API address of the running Caddy (default: CADDY_ADMIN or localhost:2019)")
	flags.StringP("config", "c", "", "Config file to read the admin address from")
	flags.StringP("adapter", "a", "", "Name of the config adapter to use with --config")

	token := &cobra.Command{
		Use:   "token",
		Short: "Creates, rotates or disables a tenant's SCIM token",
	}
	token.AddCommand(&cobra.Command{
		Use:   "rotate <tenant>",
		Short: "Creates or replaces the tenant's SCIM token and prints it once",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			body, err := adminRequest(c, http.MethodPost, tenantPath(args[0], "scim-token"))
			if err != nil {
				return err
			}
			var resp tokenResponse
			if err := json.Unmarshal(body, &resp); err != nil || resp.Token == "" {
				return fmt.Errorf("unexpected answer from the admin API (no token)")
			}
			fmt.Fprintf(c.ErrOrStderr(), "New SCIM token for tenant %s (shown once; any previous token no longer works):\n", args[0])
			fmt.Fprintln(c.OutOrStdout(), resp.Token)
			return nil
		},
	})
	token.AddCommand(&cobra.Command{
		Use:   "disable <tenant>",
		Short: "Deletes the tenant's SCIM token: SCIM requests get 401",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if _, err := adminRequest(c, http.MethodDelete, tenantPath(args[0], "scim-token")); err != nil {
				return err
			}
			fmt.Fprintf(c.ErrOrStderr(), "SCIM disabled for tenant %s\n", args[0])
			return nil
		},
	})
	cmd.AddCommand(token)

	events := &cobra.Command{
		Use:   "events <tenant>",
		Short: "Lists a tenant's audit events, newest first, as JSON lines",
		Args:  cobra.ExactArgs(1),
		RunE:  runEvents,
	}
	ef := events.Flags()
	ef.StringSlice("type", nil, "Only these event types (comma-separated or repeated)")
	ef.String("since", "", "Only events at or after this time (RFC 3339)")
	ef.String("until", "", "Only events before this time (RFC 3339)")
	ef.Int("limit", defaultEventPage, "Events per page")
	ef.String("before", "", "Page cursor (the \"next\" of a previous page)")
	ef.Bool("all", false, "Follow the pages to the last one")
	ef.String("format", eventFormatJSONL, "Output format: jsonl or csv")
	cmd.AddCommand(events)
	addBackupCommands(cmd)
	addOperatorCommands(cmd, token) // operatorcommand.go
	addSyncCommands(cmd)
}

// maxCLIPages bounds --all, so a store that keeps answering a cursor can
// never loop the command forever.
const maxCLIPages = 10000

func runEvents(c *cobra.Command, args []string) error {
	f := c.Flags()
	types, _ := f.GetStringSlice("type")
	since, _ := f.GetString("since")
	until, _ := f.GetString("until")
	limit, _ := f.GetInt("limit")
	before, _ := f.GetString("before")
	all, _ := f.GetBool("all")
	format, _ := f.GetString("format")
	if format != eventFormatJSONL && format != eventFormatCSV {
		return fmt.Errorf("unknown --format %q (expected jsonl or csv)", format)
	}
	if err := checkEventTypes(types); err != nil {
		return err
	}

	out, err := newEventWriter(c.OutOrStdout(), format)
	if err != nil {
		return err
	}
	for page := 0; page < maxCLIPages; page++ {
		q := url.Values{}
		for _, t := range types {
			q.Add("type", t)
		}
		for name, v := range map[string]string{"since": since, "until": until, "before": before} {
			if v != "" {
				q.Set(name, v)
			}
		}
		q.Set("limit", fmt.Sprint(limit))
		body, err := adminRequest(c, http.MethodGet, tenantPath(args[0], "events")+"?"+q.Encode())
		if err != nil {
			return err
		}
		var resp eventsResponse
		if err := json.Unmarshal(body, &resp); err != nil {
			return fmt.Errorf("unexpected answer from the admin API: %v", err)
		}
		if err := out.write(resp.Events); err != nil {
			return err
		}
		if resp.Next == "" {
			return nil
		}
		if !all {
			fmt.Fprintf(c.ErrOrStderr(), "more events: --before %s\n", resp.Next)
			return nil
		}
		before = resp.Next
	}
	return fmt.Errorf("stopped after %d pages", maxCLIPages)
}

func tenantPath(tenant, resource string) string {
	return tenantsPath + url.PathEscape(tenant) + "/" + resource
}

// maxAdminAnswer bounds what the CLI reads from the admin API.
const maxAdminAnswer = 16 << 20

// adminRequest calls the admin API of the running Caddy and returns the
// answer's body; an error answer becomes the error.
func adminRequest(c *cobra.Command, method, uri string) ([]byte, error) {
	f := c.Flags()
	addrFlag, _ := f.GetString("address")
	configFlag, _ := f.GetString("config")
	adapterFlag, _ := f.GetString("adapter")
	addr, err := caddycmd.DetermineAdminAPIAddress(addrFlag, nil, configFlag, adapterFlag)
	if err != nil {
		return nil, fmt.Errorf("finding the admin address: %v", err)
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
}
