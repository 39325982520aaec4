package control

import (
	"sync"
	"time"
)

// bucket is a token bucket of a Rate.
type bucket struct {
	tokens float64
	last   time.Time
}

// refill adds the tokens earned since b.last, capped at the burst.
func (b *bucket) refill(r Rate, now time.Time) {
	if b.last.IsZero() {
		b.tokens, b.last = float64(r.Burst), now
		return
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(float64(r.Burst), b.tokens+float64(d)/float64(r.Every))
		b.last = now
	}
}

// wait is how long until one token is available.
func (b *bucket) wait(r Rate) time.Duration {
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(r.Every))
}

// maxSources bounds the per-source table: past it, sources whose bucket
// is full again (as good as absent) are forgotten.
const maxSources = 4096

// connLimiter rate-limits and counts connections per source and in all.
type connLimiter struct {
	mu         sync.Mutex
	now        func() time.Time
	perSource  Rate
	global     Rate
	maxConns   int
	maxPerSrc  int
	all        bucket
	sources    map[string]*bucket
	open       int
	openPerSrc map[string]int
}

func newConnLimiter(c Config) *connLimiter {
	return &connLimiter{now: time.Now, perSource: c.PerSource, global: c.Global,
		maxConns: c.MaxConns, maxPerSrc: c.MaxConnsPerSource,
		sources: map[string]*bucket{}, openPerSrc: map[string]int{}}
}

// admit decides on a new connection from src. On success the caller must
// call release(src) when the connection ends. The reason says which limit
// refused it.
func (l *connLimiter) admit(src string) (ok bool, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	switch {
	case l.open >= l.maxConns:
		return false, "too many connections"
	case l.openPerSrc[src] >= l.maxPerSrc:
		return false, "too many connections from this source"
	}
	b := l.sources[src]
	if b == nil {
		l.forgetFull(now)
		b = &bucket{}
		l.sources[src] = b
	}
	b.refill(l.perSource, now)
	l.all.refill(l.global, now)
	switch {
	case b.tokens < 1:
		return false, "rate limit for this source"
	case l.all.tokens < 1:
		return false, "global rate limit"
	}
	b.tokens--
	l.all.tokens--
	l.open++
	l.openPerSrc[src]++
	return true, ""
}

func (l *connLimiter) release(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.openPerSrc[src]--; l.openPerSrc[src] <= 0 {
		delete(l.openPerSrc, src)
	}
}

// forgetFull drops full buckets when the table is at its bound.
func (l *connLimiter) forgetFull(now time.Time) {
	if len(l.sources) < maxSources {
		return
	}
	for src, b := range l.sources {
		b.refill(l.perSource, now)
		if b.tokens >= float64(l.perSource.Burst) {
			delete(l.sources, src)
		}
	}
}

// keyLimiter rate-limits unlock attempts: each attempt takes a token, and
// a right key gives it back, so that only wrong keys count.
type keyLimiter struct {
	mu    sync.Mutex
	now   func() time.Time
	rate  Rate
	b     bucket
	wrong int
}

// take reserves an attempt, or says how long to wait for one.
func (k *keyLimiter) take() (wait time.Duration, ok bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.b.refill(k.rate, k.now())
	if w := k.b.wait(k.rate); w > 0 {
		return w, false
	}
	k.b.tokens--
	return 0, true
}

// done settles a reserved attempt: a wrong key is counted and keeps its
// token spent; anything else gives the token back.
func (k *keyLimiter) done(wrongKey bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if wrongKey {
		k.wrong++
		return
	}
	k.b.tokens = min(float64(k.rate.Burst), k.b.tokens+1)
}

func (k *keyLimiter) wrongKeys() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.wrong
}
