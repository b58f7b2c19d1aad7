package caddymodule

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/portcullis/portcullis/authz"
)

// The tenant's assertion key lives in the store, which a handler's
// Provision must not open (`caddy validate` provisions while the gateway
// runs and holds the store's lock). So the handlers that need the key
// build what uses it at their first request; the tenant's signer is shared
// and loaded once (tenantRuntime.assertionSigner).

// lazyGate is an identity route's gate: ready from Provision for a route
// that signs no assertion, built at the first request otherwise.
type lazyGate struct {
	runtime  *tenantRuntime
	cfg      authz.GateConfig // checked in Provision
	audience string

	ready atomic.Pointer[authz.Gate]
	mu    sync.Mutex
}

// get returns the gate, building it with the tenant's signer the first
// time. A failure (the store cannot be read) is retried at the next
// request.
func (l *lazyGate) get(ctx context.Context) (*authz.Gate, error) {
	if g := l.ready.Load(); g != nil {
		return g, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if g := l.ready.Load(); g != nil {
		return g, nil
	}
	signer, err := l.runtime.assertionSigner(ctx)
	if err != nil {
		return nil, err
	}
	cfg := l.cfg
	cfg.Assertions, cfg.AssertionAudience = signer, l.audience
	g, err := authz.NewGate(cfg)
	if err != nil {
		return nil, err
	}
	l.ready.Store(g)
	return g, nil
}

// lazyJWKS is the key set handler of a tenant, built at the first request.
type lazyJWKS struct {
	runtime *tenantRuntime
	ready   atomic.Pointer[http.Handler]
}

// get returns the handler; a failure is retried at the next request.
func (l *lazyJWKS) get(ctx context.Context) (http.Handler, error) {
	if h := l.ready.Load(); h != nil {
		return *h, nil
	}
	signer, err := l.runtime.assertionSigner(ctx)
	if err != nil {
		return nil, err
	}
	h := signer.JWKSHandler()
	l.ready.CompareAndSwap(nil, &h)
	return *l.ready.Load(), nil
}
