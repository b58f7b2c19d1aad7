package caddymodule

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/portcullis/portcullis/pages"
)

// Refusals (400, 401, 403, 429, 5xx) of identity and sso go through Caddy's
// error handling when the site has a handle_errors block that takes them:
// the handler returns a caddyhttp.Error with the status, and these
// placeholders are set for the handle_errors routes (besides Caddy's own
// {http.error.status_code}, {http.error.message}, {http.error.id}):
//
//	{portcullis.error.kind}            the page: access_denied, account_inactive, ... (pages.Kinds)
//	{portcullis.error.code}            machine code, as in the JSON answers: forbidden, unauthenticated, bad_path, ...
//	{portcullis.error.title}           the page's title ("Access denied")
//	{portcullis.error.reason}          what happened, in plain words
//	{portcullis.error.hint}            what to do next
//	{portcullis.error.required_role}   the role the route requires (access_denied)
//	{portcullis.error.allowed_groups}  the groups the route lets in, comma separated
//	{portcullis.error.event_id}        the audit event id (the reference for the helpdesk)
//	{portcullis.error.sign_in_url}     where to sign in (again), when offered
//	{portcullis.error.sign_out_url}    where to sign out or switch user, when offered
//	{portcullis.user.name}             userName, where known
//	{portcullis.user.email}            email, where known
//	{portcullis.user.display_name}     display name, where known
//	{portcullis.user.role}             the user's role (access_denied)
//
// Without a handle_errors block, or when none of its routes match the
// request (e.g. `handle_errors 404 { ... }` and a 403), the gateway writes
// its own page (the built-in one or the tenant's templates), since Caddy
// would otherwise send the status with an empty body. A redirect to sign
// in is not a refusal and stays a redirect.

// refusalError is the error a refused request carries to handle_errors.
type refusalError struct{ page pages.Data }

func (e refusalError) Error() string {
	return fmt.Sprintf("portcullis: %s (%s): %s", e.page.Kind, e.page.Code, e.page.Message)
}

// handRefusalToCaddy is the OnRefusal hook of gates and sign-in services:
// the refusal as a caddyhttp.Error when the server's error routes take it,
// nil (the gateway writes its page) otherwise.
func handRefusalToCaddy(r *http.Request, d *pages.Data) error {
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if !ok || srv == nil || srv.Errors == nil || len(srv.Errors.Routes) == 0 {
		return nil
	}
	herr := caddyhttp.Error(d.Status, refusalError{page: *d})
	// Ask the error routes' matchers as Caddy will: with the error in the
	// request (handle_errors 4xx matches on {http.error.status_code}).
	probe := srv.Errors.WithError(r, herr)
	taken := false
	for _, route := range srv.Errors.Routes {
		if route.MatcherSets.AnyMatch(probe) {
			taken = true
			break
		}
	}
	if !taken {
		return nil
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		setRefusalPlaceholders(repl, d)
	}
	return herr
}

func setRefusalPlaceholders(repl *caddy.Replacer, d *pages.Data) {
	set := func(name, value string) { repl.Set(name, value) }
	set("portcullis.error.kind", string(d.Kind))
	set("portcullis.error.code", d.Code)
	set("portcullis.error.title", d.Title)
	set("portcullis.error.reason", d.Message)
	set("portcullis.error.hint", d.Hint)
	set("portcullis.error.required_role", d.RequiredRole)
	set("portcullis.error.allowed_groups", strings.Join(d.AllowedGroups, ", "))
	set("portcullis.error.event_id", d.Reference)
	set("portcullis.error.sign_in_url", d.SignInURL)
	signOut := d.SignOutURL
	if signOut == "" {
		signOut = d.SwitchUserURL
	}
	set("portcullis.error.sign_out_url", signOut)
	// Every placeholder is set, empty when unknown: respond and templates
	// leave an unset placeholder as its literal "{portcullis.user.name}".
	var u pages.User
	if d.User != nil {
		u = *d.User
	}
	set("portcullis.user.name", u.Name)
	set("portcullis.user.email", u.Email)
	set("portcullis.user.display_name", u.DisplayName)
	set("portcullis.user.role", d.Role)
}

// loadPages loads the templates of each tenant (its own templates
// directory, else the app's), once per directory, so a bad template is
// refused when the config loads.
func (a *App) loadPages() error {
	loaded := map[string]*pages.Set{}
	for _, t := range a.Tenants {
		dir := t.Templates
		if dir == "" {
			dir = a.Templates
		}
		if dir == "" {
			t.pages = nil
			continue
		}
		set, ok := loaded[dir]
		if !ok {
			var err error
			if set, err = pages.Load(dir); err != nil {
				return fmt.Errorf("tenant %s: templates: %v", t.Name, err)
			}
			loaded[dir] = set
		}
		t.pages = set
	}
	return nil
}
