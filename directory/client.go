package directory

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	admin "google.golang.org/api/admin/directory/v1"
	reports "google.golang.org/api/admin/reports/v1"
	"google.golang.org/api/option"
)

// client holds the Google API services of one tenant and counts its calls.
type client struct {
	tokens oauth2.TokenSource
	dir    *admin.Service
	rep    *reports.Service
	calls  atomic.Int64
}

// newClient builds the services from the service account key: a JWT
// bearer grant (RFC 7523) signed with the key, for Subject = the admin the
// service account acts as (domain-wide delegation), at the key's token_uri.
func newClient(cfg *Config) (*client, error) {
	jwt, err := google.JWTConfigFromJSON(cfg.Credentials, cfg.scopes()...)
	if err != nil {
		return nil, fmt.Errorf("directory: reading the service account key: %w", err)
	}
	jwt.Subject = cfg.AdminEmail
	c := &client{}
	// The token requests use their own plain client: a token endpoint
	// failure must surface as such, not be retried as an API answer.
	tokenCtx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: 30e9})
	c.tokens = oauth2.ReuseTokenSource(nil, jwt.TokenSource(tokenCtx))
	hc := &http.Client{
		Timeout:   60e9,
		Transport: &oauth2.Transport{Source: c.tokens, Base: countingTransport{next: http.DefaultTransport, n: &c.calls}},
	}
	opts := []option.ClientOption{option.WithHTTPClient(hc)}
	if cfg.APIEndpoint != "" {
		opts = append(opts, option.WithEndpoint(cfg.APIEndpoint))
	}
	ctx := context.Background()
	if c.dir, err = admin.NewService(ctx, opts...); err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	if c.rep, err = reports.NewService(ctx, opts...); err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	return c, nil
}

// countingTransport counts the API requests sent (retries included).
type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.next.RoundTrip(r)
}

// tokenError is a failure to obtain an access token: the sync stops.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return "getting an access token: " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// checkToken obtains (or reuses) an access token, so a sync whose
// credentials do not work fails before it reads anything.
func (c *client) checkToken() error {
	if _, err := c.tokens.Token(); err != nil {
		return &tokenError{err}
	}
	return nil
}

// asTokenError recognises a token failure inside an API call's error.
func asTokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return &tokenError{err}
	}
	return err
}
