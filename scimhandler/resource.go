package scimhandler

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// storedKind is how the request flows Users and Groups share read, version
// and render the stored record of one resource type.
type storedKind[R any] struct {
	rt      *resourceType
	get     func(tx storage.ReadTx, id string) (R, error)
	version func(R) int64
	render  func(tx storage.ReadTx, rec R, base string, o renderOpts) (map[string]any, error)
}

var (
	storedUsers = storedKind[*storage.User]{userResource, storage.ReadTx.GetUser,
		func(u *storage.User) int64 { return u.Version }, renderUser}
	storedGroups = storedKind[*storage.Group]{groupResource, storage.ReadTx.GetGroup,
		func(g *storage.Group) int64 { return g.Version }, renderGroup}
)

// serveGet answers a GET of one resource: 304 with its ETag, and without
// rendering it, when If-None-Match names its version.
func (k storedKind[R]) serveGet(h *Handler, req *request, id string) error {
	p, err := projectionFor(k.rt, req.r)
	if err != nil {
		return err
	}
	var doc map[string]any
	var version int64
	err = h.view(req.ctx, func(tx storage.ReadTx) error {
		rec, err := k.get(tx, id)
		if err != nil {
			return notFoundAs(err, k.rt.Name, id)
		}
		version = k.version(rec)
		if inm := req.r.Header.Get("If-None-Match"); inm != "" && etagListMatches(inm, version) {
			return nil
		}
		doc, err = k.render(tx, rec, req.base, outputOpts(p))
		return err
	})
	if err != nil {
		return err
	}
	if doc == nil {
		req.w.Header().Set("ETag", etag(version))
		req.w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return writeResource(req, http.StatusOK, k.rt, doc, version, p)
}

// loadForWrite reads the resource a PUT, PATCH or DELETE changes: 404 when
// there is none, 412 when If-Match names another version. On error the
// record is not to be used.
func (k storedKind[R]) loadForWrite(tx storage.ReadTx, r *http.Request, id string) (R, error) {
	rec, err := k.get(tx, id)
	if err != nil {
		return rec, notFoundAs(err, k.rt.Name, id)
	}
	return rec, checkIfMatch(r, k.version(rec))
}

// change runs apply on the resource in one write transaction and answers
// with the saved resource under p, or, without withBody, with 204 and its
// ETag alone (the resource is then not rendered).
func (k storedKind[R]) change(h *Handler, req *request, id string, p *projection, withBody bool,
	apply func(tx storage.Tx, current R) (saved R, err error)) error {
	var doc map[string]any
	var version int64
	err := h.updateResource(req.ctx, id, func(tx storage.Tx) error {
		current, err := k.loadForWrite(tx, req.r, id)
		if err != nil {
			return err
		}
		saved, err := apply(tx, current)
		if err != nil {
			return err
		}
		version = k.version(saved)
		if withBody {
			doc, err = k.render(tx, saved, req.base, outputOpts(p))
		}
		return err
	})
	if err != nil {
		return err
	}
	req.committed = time.Now()
	if !withBody {
		req.w.Header().Set("ETag", etag(version))
		req.w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return writeResource(req, http.StatusOK, k.rt, doc, version, p)
}

// remove runs del on the resource in one write transaction and answers 204.
func (k storedKind[R]) remove(h *Handler, req *request, id string, del func(tx storage.Tx, current R) error) error {
	err := h.updateResource(req.ctx, id, func(tx storage.Tx) error {
		current, err := k.loadForWrite(tx, req.r, id)
		if err != nil {
			return err
		}
		return del(tx, current)
	})
	if err != nil {
		return err
	}
	req.committed = time.Now()
	h.logger.Info("scim "+strings.ToLower(k.rt.Name)+" deleted", zap.String("id", id))
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}

// notFoundAs turns the store's ErrNotFound into a 404 naming the resource.
func notFoundAs(err error, resource, id string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return errNotFound("%s %q not found", resource, truncate(id, 64))
	}
	return err
}

// projectionFor reads the attributes/excludedAttributes query parameters.
func projectionFor(rt *resourceType, r *http.Request) (*projection, error) {
	q := r.URL.Query()
	return parseProjection(rt, splitAttrList(q.Get("attributes")), splitAttrList(q.Get("excludedAttributes")))
}

// writeResource answers with one resource.
func writeResource(req *request, status int, rt *resourceType, doc map[string]any, version int64, p *projection) error {
	body, err := marshalResource(rt, p.apply(doc))
	if err != nil {
		return err
	}
	hdr := req.w.Header()
	hdr.Set("ETag", etag(version))
	if status == http.StatusCreated {
		hdr.Set("Location", req.base+rt.Endpoint+"/"+fmt.Sprint(doc["id"]))
	}
	hdr.Set("Content-Type", contentTypeSCIM)
	req.w.WriteHeader(status)
	_, _ = req.w.Write(body)
	return nil
}
