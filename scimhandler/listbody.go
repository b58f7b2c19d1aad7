package scimhandler

import (
	"net/http"
	"strconv"
	"sync"
)

// listBody is a ListResponse being written: its resources go straight
// into one buffer, in the order encoding/json gives a map's keys
// ("Resources" first, then itemsPerPage, schemas, startIndex,
// totalResults), so the page is written once. A page of 100 users wrote
// each document into a page buffer sized by guess (then grown two or three
// times) and copied them all into the body: half of a page's allocated
// bytes, and the collector's work with them ~20% of a page's CPU.
//
// The buffer comes from a pool and goes back once the body is written
// (an http.ResponseWriter does not keep what Write is given).
type listBody struct {
	buf []byte
	n   int // resources written
}

// listHead is what every ListResponse body starts with.
const listHead = `{"Resources":[`

// maxPooledListBody bounds the buffers the pool keeps: a page of
// maxResults large users can be several megabytes, and one such page
// should not pin that much for the life of the process.
const maxPooledListBody = 1 << 20

var listBodies = sync.Pool{New: func() any { return &listBody{buf: make([]byte, 0, 64<<10)} }}

func newListBody() *listBody {
	b := listBodies.Get().(*listBody)
	b.reset()
	return b
}

// reset empties b (a View's fn may run again after a retry).
func (b *listBody) reset() {
	b.buf, b.n = append(b.buf[:0], listHead...), 0
}

// next starts a resource: the separator before it, if any. It returns
// where the resource starts, for undo.
func (b *listBody) next() int {
	mark := len(b.buf)
	if b.n > 0 {
		b.buf = append(b.buf, ',')
	}
	b.n++
	return mark
}

// undo drops the resource started at mark (by next).
func (b *listBody) undo(mark int) {
	b.buf = b.buf[:mark]
	b.n--
}

// write finishes the body and writes the response.
func (b *listBody) write(w http.ResponseWriter, total, startIndex int) {
	b.buf = append(b.buf, `],"itemsPerPage":`...)
	b.buf = strconv.AppendInt(b.buf, int64(b.n), 10)
	b.buf = append(b.buf, `,"schemas":["`+schemaListResponse+`"],"startIndex":`...)
	b.buf = strconv.AppendInt(b.buf, int64(startIndex), 10)
	b.buf = append(b.buf, `,"totalResults":`...)
	b.buf = strconv.AppendInt(b.buf, int64(total), 10)
	b.buf = append(b.buf, '}')
	w.Header().Set("Content-Type", contentTypeSCIM)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.buf)
}

// release returns b to the pool; b is not used after.
func (b *listBody) release() {
	if cap(b.buf) > maxPooledListBody {
		return
	}
	listBodies.Put(b)
}
