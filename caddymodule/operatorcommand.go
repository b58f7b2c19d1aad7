package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/operator"
)

// operatorCommandsHelp is appended to the portcullis command's help.
const operatorCommandsHelp = `
  caddy portcullis users list <tenant> [--filter TEXT] [--source S] [--limit N] [--all]
  caddy portcullis users show <tenant> <user-id>
  caddy portcullis users create <tenant> --user-name NAME --email ADDR [--display-name NAME] [--role ROLE]
  caddy portcullis users set-role <tenant> <user-id> <role>
  caddy portcullis users deactivate|activate|delete <tenant> <user-id>
      Lists and shows users (with why they have their role); creates and
      changes manual users. Users the IdP manages (SCIM, Google, JIT) are
      changed in the IdP: these commands refuse them.

  caddy portcullis groups list <tenant>
  caddy portcullis mappings list <tenant>
  caddy portcullis mappings set <tenant> <group> <role>
  caddy portcullis mappings unset <tenant> <group>
      Every group with its level; the group → role mappings from the config
      (map_group, which wins) and those stored at runtime. A change takes
      effect on the next request of every member.

  caddy portcullis sessions list <tenant> <user-id>
  caddy portcullis sessions end <tenant> <user-id>
  caddy portcullis sessions end <tenant> --all-tenant
      Lists or ends a user's sessions, or every session of the tenant; the
      next request of an ended session must sign in again.

  caddy portcullis token status <tenant>
      The SCIM token's health: created, rotated, last used (when, from
      where, by which client), requests and failures in the last 24 hours.

  caddy portcullis disconnect <tenant> --yes
      Disconnects the tenant's IdP: SCIM is disabled (pushes get 401) and
      every IdP-managed user becomes a manual user with the role they have
      now. Nobody is signed out.

Every command prints a human-readable answer; --json prints the admin
API's JSON answer instead.
`

// addOperatorCommands adds the operator's subcommands (over the admin
// API routes of adminoperator.go) to the portcullis command, and token
// status to its token command.
func addOperatorCommands(cmd, token *cobra.Command) {
	cmd.Long += operatorCommandsHelp
	cmd.Use += " | users ... | groups list | mappings ... | sessions ... | token status | disconnect"

	token.AddCommand(jsonFlag(&cobra.Command{
		Use:   "status <tenant>",
		Short: "Shows the SCIM token's health (never the token)",
		Args:  cobra.ExactArgs(1),
		RunE:  runTokenStatus,
	}))

	users := &cobra.Command{Use: "users", Short: "Lists, shows, creates and changes users"}
	list := jsonFlag(&cobra.Command{
		Use:   "list <tenant>",
		Short: "Lists users with their source, role and status",
		Args:  cobra.ExactArgs(1),
		RunE:  runUsersList,
	})
	lf := list.Flags()
	lf.String("filter", "", "Only users whose userName or displayName contains this, or whose email starts with it")
	lf.String("source", "", "Only users of this source: "+strings.Join(userSources, ", "))
	lf.Int("limit", 50, "Users per page")
	lf.String("cursor", "", "Page cursor (printed after a page)")
	lf.Bool("all", false, "Follow the pages to the last one")
	users.AddCommand(list)
	users.AddCommand(jsonFlag(&cobra.Command{
		Use:   "show <tenant> <user-id>",
		Short: "Shows a user and why they have their role",
		Args:  cobra.ExactArgs(2),
		RunE:  runUserShow,
	}))
	create := jsonFlag(&cobra.Command{
		Use:   "create <tenant>",
		Short: "Creates a manual user (signs in through the IdP; role set by hand)",
		Args:  cobra.ExactArgs(1),
		RunE:  runUserCreate,
	})
	cf := create.Flags()
	cf.String("user-name", "", "The userName the IdP's sign-in will carry (required)")
	cf.String("email", "", "The user's email")
	cf.String("display-name", "", "The user's display name")
	cf.String("role", "", "The user's role (one of the tenant's roles)")
	users.AddCommand(create)
	users.AddCommand(jsonFlag(&cobra.Command{
		Use:   "set-role <tenant> <user-id> <role>",
		Short: "Sets a manual user's role",
		Args:  cobra.ExactArgs(3),
		RunE: func(c *cobra.Command, args []string) error {
			return changeUser(c, args[0], args[1], operator.UserChange{Role: &args[2]})
		},
	}))
	for _, s := range []struct {
		use    string
		active bool
	}{{"deactivate", false}, {"activate", true}} {
		users.AddCommand(jsonFlag(&cobra.Command{
			Use:   s.use + " <tenant> <user-id>",
			Short: strings.ToUpper(s.use[:1]) + s.use[1:] + "s a manual user",
			Args:  cobra.ExactArgs(2),
			RunE: func(c *cobra.Command, args []string) error {
				return changeUser(c, args[0], args[1], operator.UserChange{Active: &s.active})
			},
		}))
	}
	users.AddCommand(&cobra.Command{
		Use:   "delete <tenant> <user-id>",
		Short: "Deletes a manual user",
		Args:  cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			if _, err := adminCall(c, http.MethodDelete, tenantPath(args[0], "users/"+url.PathEscape(args[1])), nil); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "Deleted user %s of tenant %s\n", args[1], args[0])
			return nil
		},
	})
	cmd.AddCommand(users)

	groups := &cobra.Command{Use: "groups", Short: "Lists the tenant's groups"}
	groups.AddCommand(jsonFlag(&cobra.Command{
		Use:   "list <tenant>",
		Short: "Lists every group with its source, members and level",
		Args:  cobra.ExactArgs(1),
		RunE:  runGroupsList,
	}))
	cmd.AddCommand(groups)

	mappings := &cobra.Command{Use: "mappings", Short: "Lists and changes group → role mappings"}
	mappings.AddCommand(jsonFlag(&cobra.Command{
		Use:   "list <tenant>",
		Short: "Lists the roles, the default and every mapping",
		Args:  cobra.ExactArgs(1),
		RunE:  runMappingsList,
	}))
	mappings.AddCommand(jsonFlag(&cobra.Command{
		Use:   "set <tenant> <group> <role>",
		Short: "Maps a group (id, externalId or displayName) to a role",
		Args:  cobra.ExactArgs(3),
		RunE: func(c *cobra.Command, args []string) error {
			body, err := adminCall(c, http.MethodPut, mappingPath(args[0], args[1]), mappingRole{Role: args[2]})
			if err != nil {
				return err
			}
			return printAnswer(c, body, func(w io.Writer) error {
				fmt.Fprintf(w, "Group %q now grants %s in tenant %s (from the next request of each member)\n", args[1], args[2], args[0])
				return nil
			})
		},
	}))
	mappings.AddCommand(&cobra.Command{
		Use:   "unset <tenant> <group>",
		Short: "Removes a stored mapping: the group's members fall back to their other groups or the default",
		Args:  cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			if _, err := adminCall(c, http.MethodDelete, mappingPath(args[0], args[1]), nil); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "Group %q is no longer mapped in tenant %s\n", args[1], args[0])
			return nil
		},
	})
	cmd.AddCommand(mappings)

	sessions := &cobra.Command{Use: "sessions", Short: "Lists and ends sessions"}
	sessions.AddCommand(jsonFlag(&cobra.Command{
		Use:   "list <tenant> <user-id>",
		Short: "Lists a user's live sessions",
		Args:  cobra.ExactArgs(2),
		RunE:  runSessionsList,
	}))
	end := jsonFlag(&cobra.Command{
		Use:   "end <tenant> <user-id> | end <tenant> --all-tenant",
		Short: "Ends every session of a user, or of the whole tenant",
		Args:  cobra.RangeArgs(1, 2),
		RunE:  runSessionsEnd,
	})
	end.Flags().Bool("all-tenant", false, "End every session of the tenant")
	sessions.AddCommand(end)
	cmd.AddCommand(sessions)

	disconnect := jsonFlag(&cobra.Command{
		Use:   "disconnect <tenant> --yes",
		Short: "Disconnects the tenant's IdP; its users become manual users",
		Args:  cobra.ExactArgs(1),
		RunE:  runDisconnect,
	})
	disconnect.Flags().Bool("yes", false, "Confirm: SCIM stops (pushes get 401) and every IdP-managed user becomes manual")
	cmd.AddCommand(disconnect)
}

// jsonFlag gives a command the --json flag.
func jsonFlag(c *cobra.Command) *cobra.Command {
	c.Flags().Bool("json", false, "Print the admin API's JSON answer")
	return c
}

// printAnswer prints the raw answer with --json, else the human form.
func printAnswer(c *cobra.Command, body []byte, human func(io.Writer) error) error {
	if raw, _ := c.Flags().GetBool("json"); raw {
		_, err := c.OutOrStdout().Write(body)
		return err
	}
	return human(c.OutOrStdout())
}

// decodeAnswer decodes an admin API answer the CLI prints.
func decodeAnswer(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("unexpected answer from the admin API: %v", err)
	}
	return nil
}

func mappingPath(tenant, group string) string {
	return tenantPath(tenant, "mappings/"+url.PathEscape(group))
}

func runTokenStatus(c *cobra.Command, args []string) error {
	body, err := adminCall(c, http.MethodGet, tenantPath(args[0], "scim-token"), nil)
	if err != nil {
		return err
	}
	var st operator.TokenStatus
	if err := decodeAnswer(body, &st); err != nil {
		return err
	}
	return printAnswer(c, body, func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "Status:\t%s\n", st.Status)
		fmt.Fprintf(tw, "Created:\t%s\n", when(st.Created))
		if st.Rotated != nil {
			fmt.Fprintf(tw, "Rotated:\t%s\n", when(*st.Rotated))
		}
		if u := st.LastUsed; u != nil {
			client := u.UserAgent
			if u.Client != "" {
				client = u.Client + " (" + u.UserAgent + ")"
			}
			fmt.Fprintf(tw, "Last used:\t%s from %s by %s\n", when(u.Time), u.ClientAddr, client)
		} else {
			fmt.Fprintf(tw, "Last used:\tnever\n")
		}
		fmt.Fprintf(tw, "Last 24 h:\t%d requests, %d refused\n", st.Requests24h, st.Failures24h)
		return tw.Flush()
	})
}

func runUsersList(c *cobra.Command, args []string) error {
	f := c.Flags()
	filter, _ := f.GetString("filter")
	source, _ := f.GetString("source")
	limit, _ := f.GetInt("limit")
	cursor, _ := f.GetString("cursor")
	all, _ := f.GetBool("all")
	raw, _ := f.GetBool("json")

	out := c.OutOrStdout()
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if !raw {
		fmt.Fprintln(tw, "USERNAME\tDISPLAY NAME\tSOURCE\tROLE\tSTATUS\tSESSIONS\tLAST SIGN-IN\tID")
	}
	for page := 0; page < maxCLIPages; page++ {
		q := url.Values{}
		for name, v := range map[string]string{"filter": filter, "source": source, "cursor": cursor} {
			if v != "" {
				q.Set(name, v)
			}
		}
		q.Set("limit", fmt.Sprint(limit))
		body, err := adminCall(c, http.MethodGet, tenantPath(args[0], "users")+"?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		var resp usersPage
		if err := decodeAnswer(body, &resp); err != nil {
			return err
		}
		if raw {
			if _, err := out.Write(body); err != nil {
				return err
			}
		} else {
			for _, u := range resp.Users {
				last := "never"
				if u.LastSignIn != nil {
					last = when(*u.LastSignIn)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", u.UserName, dash(u.DisplayName), u.Source, dash(u.Role), status(u.Active), u.Sessions, last, u.ID)
			}
		}
		if resp.Next == "" {
			return tw.Flush()
		}
		if !all {
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(c.ErrOrStderr(), "more users: --cursor %s\n", resp.Next)
			return nil
		}
		cursor = resp.Next
	}
	_ = tw.Flush()
	return fmt.Errorf("stopped after %d pages", maxCLIPages)
}

func runUserShow(c *cobra.Command, args []string) error {
	body, err := adminCall(c, http.MethodGet, tenantPath(args[0], "users/"+url.PathEscape(args[1])), nil)
	if err != nil {
		return err
	}
	return printUser(c, body)
}

// printUser prints an answer holding one user with the reason for their
// role.
func printUser(c *cobra.Command, body []byte) error {
	var u operator.UserDetail
	if err := decodeAnswer(body, &u); err != nil {
		return err
	}
	return printAnswer(c, body, func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "ID:\t%s\n", u.ID)
		fmt.Fprintf(tw, "userName:\t%s\n", u.UserName)
		fmt.Fprintf(tw, "Display name:\t%s\n", dash(u.DisplayName))
		fmt.Fprintf(tw, "Emails:\t%s\n", dash(strings.Join(u.Emails, ", ")))
		fmt.Fprintf(tw, "Source:\t%s\n", u.Source)
		fmt.Fprintf(tw, "Status:\t%s\n", status(u.Active))
		fmt.Fprintf(tw, "Role:\t%s\n", dash(u.Role))
		fmt.Fprintf(tw, "Why:\t%s\n", dash(u.RoleReason.Text))
		for i, ra := range u.RoleReason.Routes {
			label := ""
			if i == 0 {
				label = "Routes:"
			}
			verdict := "allowed"
			if !ra.Allowed {
				verdict = "refused"
			}
			fmt.Fprintf(tw, "%s\t%s %s (%s: %s)\n", label, verdict, ra.Route, ra.Policy, ra.Why)
		}
		var groups []string
		for _, g := range u.Groups {
			groups = append(groups, g.DisplayName)
		}
		fmt.Fprintf(tw, "Groups:\t%s\n", dash(strings.Join(groups, ", ")))
		last := "never"
		if u.LastSignIn != nil {
			last = when(*u.LastSignIn)
		}
		fmt.Fprintf(tw, "Last sign-in:\t%s\n", last)
		fmt.Fprintf(tw, "Sessions:\t%d\n", u.Sessions)
		return tw.Flush()
	})
}

func runUserCreate(c *cobra.Command, args []string) error {
	f := c.Flags()
	var nu operator.NewUser
	nu.UserName, _ = f.GetString("user-name")
	nu.Email, _ = f.GetString("email")
	nu.DisplayName, _ = f.GetString("display-name")
	nu.Role, _ = f.GetString("role")
	if nu.UserName == "" {
		return errors.New("--user-name is required")
	}
	body, err := adminCall(c, http.MethodPost, tenantPath(args[0], "users"), nu)
	if err != nil {
		return err
	}
	return printUser(c, body)
}

func changeUser(c *cobra.Command, tenant, id string, ch operator.UserChange) error {
	body, err := adminCall(c, http.MethodPatch, tenantPath(tenant, "users/"+url.PathEscape(id)), ch)
	if err != nil {
		return err
	}
	return printUser(c, body)
}

func runGroupsList(c *cobra.Command, args []string) error {
	body, err := adminCall(c, http.MethodGet, tenantPath(args[0], "groups"), nil)
	if err != nil {
		return err
	}
	var resp groupsList
	if err := decodeAnswer(body, &resp); err != nil {
		return err
	}
	return printAnswer(c, body, func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GROUP\tSOURCE\tMEMBERS\tLEVEL\tFROM\tID")
		for _, g := range resp.Groups {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", g.DisplayName, g.Source, g.Members, dash(g.Level), g.LevelFrom, g.ID)
		}
		return tw.Flush()
	})
}

func runMappingsList(c *cobra.Command, args []string) error {
	body, err := adminCall(c, http.MethodGet, tenantPath(args[0], "mappings"), nil)
	if err != nil {
		return err
	}
	var m operator.Mappings
	if err := decodeAnswer(body, &m); err != nil {
		return err
	}
	return printAnswer(c, body, func(w io.Writer) error {
		// A stored mapping names its group by id: show the name too.
		names := map[string]string{}
		if len(m.Stored) > 0 {
			if gb, err := adminCall(c, http.MethodGet, tenantPath(args[0], "groups"), nil); err == nil {
				var gl groupsList
				if decodeAnswer(gb, &gl) == nil {
					for _, g := range gl.Groups {
						names[g.ID] = g.DisplayName
					}
				}
			}
		}
		fmt.Fprintf(w, "Roles (lowest first): %s\n", dash(strings.Join(m.Roles, ", ")))
		fmt.Fprintf(w, "Unmapped groups and users in none: %s. Members of several groups get the highest.\n", dash(m.Default))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GROUP\tROLE\tFROM")
		for _, x := range m.Config {
			fmt.Fprintf(tw, "%s\t%s\tconfig (map_group; wins)\n", x.Group, x.Role)
		}
		for _, x := range m.Stored {
			group := x.Group
			if name, ok := names[x.Group]; ok {
				group = name + " (" + x.Group + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\tstored\n", group, x.Role)
		}
		return tw.Flush()
	})
}

func runSessionsList(c *cobra.Command, args []string) error {
	body, err := adminCall(c, http.MethodGet, tenantPath(args[0], "users/"+url.PathEscape(args[1])+"/sessions"), nil)
	if err != nil {
		return err
	}
	var resp sessionsList
	if err := decodeAnswer(body, &resp); err != nil {
		return err
	}
	return printAnswer(c, body, func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CREATED\tLAST SEEN\tEXPIRES\tPROTOCOL\tCLIENT\tUSER AGENT")
		for _, s := range resp.Sessions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", when(s.Created), when(s.LastSeen), when(s.Expires), s.Protocol, dash(s.ClientAddr), dash(s.UserAgent))
		}
		return tw.Flush()
	})
}

func runSessionsEnd(c *cobra.Command, args []string) error {
	allTenant, _ := c.Flags().GetBool("all-tenant")
	var uri, whose string
	switch {
	case allTenant && len(args) == 1:
		uri, whose = tenantPath(args[0], "sessions"), "tenant "+args[0]
	case !allTenant && len(args) == 2:
		uri, whose = tenantPath(args[0], "users/"+url.PathEscape(args[1])+"/sessions"), "user "+args[1]
	default:
		return errors.New("name a user (sessions end <tenant> <user-id>) or end the whole tenant's (sessions end <tenant> --all-tenant), not both")
	}
	body, err := adminCall(c, http.MethodDelete, uri, nil)
	if err != nil {
		return err
	}
	var resp endedSessions
	if err := decodeAnswer(body, &resp); err != nil {
		return err
	}
	return printAnswer(c, body, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "Ended %d session(s) of %s\n", resp.Ended, whose)
		return err
	})
}

func runDisconnect(c *cobra.Command, args []string) error {
	if yes, _ := c.Flags().GetBool("yes"); !yes {
		return fmt.Errorf("disconnecting tenant %s's IdP disables SCIM (the IdP's pushes get 401) and turns every IdP-managed user into a manual user with the role they have now; nobody is signed out. Run again with --yes to do it", args[0])
	}
	body, err := adminCall(c, http.MethodPost, tenantPath(args[0], "disconnect"), nil)
	if err != nil {
		return err
	}
	var resp disconnected
	if err := decodeAnswer(body, &resp); err != nil {
		return err
	}
	return printAnswer(c, body, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "Disconnected tenant %s's IdP: SCIM is disabled; %d user(s) are now manual, with their role pinned\n", args[0], resp.Converted)
		return err
	})
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func status(active bool) string {
	if active {
		return "active"
	}
	return "inactive"
}

// adminCall calls the admin API of the running Caddy with an optional JSON
// body and returns the answer's body. An error answer becomes an error
// carrying the status and the API's message.
func adminCall(c *cobra.Command, method, uri string, body any) ([]byte, error) {
	f := c.Flags()
	addrFlag, _ := f.GetString("address")
	configFlag, _ := f.GetString("config")
	adapterFlag, _ := f.GetString("adapter")
	addr, err := caddycmd.DetermineAdminAPIAddress(addrFlag, nil, configFlag, adapterFlag)
	if err != nil {
		return nil, fmt.Errorf("finding the admin address: %v", err)
	}
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, nil, r)
	if err != nil {
		return nil, adminErrorMessage(err)
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
}

// adminErrorMessage shortens Caddy's "caddy responded with error: HTTP
// 409: {"error":"..."}" to "HTTP 409: ...".
func adminErrorMessage(err error) error {
	rest, ok := strings.CutPrefix(err.Error(), "caddy responded with error: ")
	if !ok {
		return err
	}
	status, body, ok := strings.Cut(rest, ": ")
	var e struct {
		Error string `json:"error"`
	}
	if !ok || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
		return err
	}
	return fmt.Errorf("%s: %s", status, e.Error)
}
