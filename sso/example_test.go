package sso_test

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/sso"
	"github.com/portcullis/portcullis/storage"
)

// Example shows the wiring a host (the Caddy handlers) does: one Service
// per tenant, its endpoints under a prefix, and Lookup on every protected
// request.
func Example() {
	var store storage.Store // badgerstore.Open(dir, logger)
	logger := zap.NewNop()
	svc, err := sso.New(context.Background(), sso.TenantConfig{
		Tenant: "acme",
		OIDC: &sso.OIDCConfig{
			Issuer:       "https://login.example.com",
			ClientID:     "portcullis",
			ClientSecret: "from {env.OIDC_SECRET}",
			GroupsClaim:  "groups",
		},
		AllowedDomains: []string{"acme.com"},
		Session:        sso.SessionConfig{AbsoluteTimeout: 8 * time.Hour, IdleTimeout: 30 * time.Minute},
	}, store, logger)
	if err != nil {
		return
	}
	defer svc.Close()

	external := func(r *http.Request) string { return "https://app.acme.com" }
	mux := http.NewServeMux()
	mux.Handle("/sso/", svc.Handler("/sso", external))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, user, err := svc.Lookup(r)
		switch {
		case errors.Is(err, sso.ErrNoSession):
			http.Redirect(w, r, svc.LoginURL("/sso", r.URL.RequestURI()), http.StatusFound)
		case errors.Is(err, sso.ErrUserInactive):
			http.Error(w, "account deactivated", http.StatusForbidden)
		case err != nil:
			http.Error(w, "try again", http.StatusServiceUnavailable)
		default:
			w.Header().Set("X-Remote-User", user.UserName)
		}
	})
}
