package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/instanthq/instant"
)

// DeadLetter is a rejected envelope as the admin API shows it.
type DeadLetter struct {
	// Seq is its sequence number in the dead-letter stream.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Code and Message are why it was rejected (Instant-Error,
	// Instant-Error-Message).
	Code    string `json:"code"`
	Message string `json:"message"`
	// Subject is the subject the producer published on (Instant-Subject).
	Subject string `json:"subject"`
	// Channel is the channel the envelope named, when it can be told.
	Channel string `json:"channel"`
	// Body is the original body, as text (invalid UTF-8 replaced).
	Body string `json:"body"`
}

// DeadFilter selects dead letters; empty fields select all.
type DeadFilter struct {
	Code    string
	Channel string
	// Limit bounds the number returned, newest first.
	Limit int
}

// DeadLetters are the rejected envelopes kept in JetStream.
// *JetStreamDeadLetters implements it.
type DeadLetters interface {
	// List returns the newest dead letters that match f, newest first.
	List(ctx context.Context, f DeadFilter) ([]DeadLetter, error)
	// Republish publishes dead letter seq again on its original subject,
	// with its original headers but the Instant-* ones, so that the bridge
	// validates it again. The error wraps ErrNoDeadLetter when seq is not
	// kept.
	Republish(ctx context.Context, seq uint64) error
	// Purge removes every dead letter and returns how many there were.
	Purge(ctx context.Context) (uint64, error)
}

// ErrNoDeadLetter is returned for a sequence number the dead-letter
// stream does not hold.
var ErrNoDeadLetter = errors.New("auth: no such dead letter")

// Dead-letter listing bounds.
const (
	deadDefaultLimit = 100
	deadMaxLimit     = 500
	// deadMaxScan bounds the messages read to answer one filtered list.
	deadMaxScan = 5000
)

// JetStreamDeadLetters reads the dead-letter stream the bridge creates in
// JetStream mode (INSTANT_DEAD). Safe for concurrent use.
type JetStreamDeadLetters struct {
	// JS reads the stream and publishes again; required.
	JS jetstream.JetStream
	// Conn sends re-published envelopes of the request subject, as
	// requests; required.
	Conn *nats.Conn
	// Stream is the dead-letter stream; "" means
	// instant.DefaultDeadStream.
	Stream string
	// Subject and RequestSubject are the bridge's (INSTANT_SUBJECT,
	// INSTANT_REQUEST_SUBJECT), to tell the channel from a subject and
	// how to publish again; "" means their defaults.
	Subject, RequestSubject string
}

var _ DeadLetters = (*JetStreamDeadLetters)(nil)

func (d *JetStreamDeadLetters) stream(ctx context.Context) (jetstream.Stream, error) {
	name := d.Stream
	if name == "" {
		name = instant.DefaultDeadStream
	}
	st, err := d.JS.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("auth: dead-letter stream %s: %w", name, err)
	}
	return st, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// List reads the stream backwards from its last message.
func (d *JetStreamDeadLetters) List(ctx context.Context, f DeadFilter) ([]DeadLetter, error) {
	st, err := d.stream(ctx)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth: dead letters: %w", err)
	}
	if f.Limit <= 0 || f.Limit > deadMaxLimit {
		f.Limit = deadDefaultLimit
	}
	out := []DeadLetter{}
	first, last := info.State.FirstSeq, info.State.LastSeq
	for seq, scanned := last, 0; seq >= first && seq > 0 && len(out) < f.Limit && scanned < deadMaxScan; seq, scanned = seq-1, scanned+1 {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("auth: dead letter %d: %w", seq, err)
		}
		dl := d.letter(m)
		if (f.Code == "" || dl.Code == f.Code) && (f.Channel == "" || dl.Channel == f.Channel) {
			out = append(out, dl)
		}
	}
	return out, nil
}

func (d *JetStreamDeadLetters) letter(m *jetstream.RawStreamMsg) DeadLetter {
	dl := DeadLetter{
		Seq: m.Sequence, Time: m.Time,
		Code:    m.Header.Get(instant.HeaderError),
		Message: m.Header.Get(instant.HeaderErrorMessage),
		Subject: m.Header.Get(instant.HeaderSubject),
		Body:    strings.ToValidUTF8(string(m.Data), "\uFFFD"),
	}
	dl.Channel = d.channel(dl.Subject, m.Data)
	return dl
}

// channel tells the channel an envelope names: the subject's suffix, else
// its channel field.
func (d *JetStreamDeadLetters) channel(subject string, body []byte) string {
	for _, prefix := range []string{orDefault(d.Subject, instant.DefaultSubject), orDefault(d.RequestSubject, instant.DefaultRequestSubject)} {
		if ch, ok := strings.CutPrefix(subject, prefix+"."); ok {
			return ch
		}
	}
	var env struct {
		Channel string `json:"channel"`
	}
	if json.Unmarshal(body, &env) == nil {
		return env.Channel
	}
	return ""
}

// Republish publishes the dead letter again. Its Nats-Msg-Id becomes
// "dead-<seq>" followed by ":" and the original one, if any: JetStream
// would drop the original id as a duplicate within the stream's
// duplicate window, and re-publishing the same dead letter twice within
// it stores it once.
func (d *JetStreamDeadLetters) Republish(ctx context.Context, seq uint64) error {
	st, err := d.stream(ctx)
	if err != nil {
		return err
	}
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("%w: %d", ErrNoDeadLetter, seq)
	}
	if err != nil {
		return fmt.Errorf("auth: dead letter %d: %w", seq, err)
	}
	subject := m.Header.Get(instant.HeaderSubject)
	if subject == "" {
		return fmt.Errorf("auth: dead letter %d has no %s header", seq, instant.HeaderSubject)
	}
	out := nats.NewMsg(subject)
	out.Data = m.Data
	for k, v := range m.Header {
		if !strings.HasPrefix(strings.ToLower(k), "instant-") {
			out.Header[k] = v
		}
	}
	id := "dead-" + strconv.FormatUint(seq, 10)
	if orig := m.Header.Get(nats.MsgIdHdr); orig != "" {
		id += ":" + orig
	}
	out.Header.Set(nats.MsgIdHdr, id)
	req := orDefault(d.RequestSubject, instant.DefaultRequestSubject)
	if subject == req || strings.HasPrefix(subject, req+".") {
		// Never captured by a stream: ask the bridge and report its
		// answer.
		resp, err := d.Conn.RequestMsgWithContext(ctx, out)
		if err != nil {
			return fmt.Errorf("auth: re-publish %d: %w", seq, err)
		}
		var reply instant.Reply
		if err := json.Unmarshal(resp.Data, &reply); err != nil {
			return fmt.Errorf("auth: re-publish %d: reply %q: %w", seq, resp.Data, err)
		}
		if !reply.OK && reply.Error != nil {
			return fmt.Errorf("auth: re-publish %d: %s: %s", seq, reply.Error.Code, reply.Error.Message)
		}
		return nil
	}
	if _, err := d.JS.PublishMsg(ctx, out); err != nil {
		return fmt.Errorf("auth: re-publish %d: %w", seq, err)
	}
	return nil
}

// Purge empties the stream.
func (d *JetStreamDeadLetters) Purge(ctx context.Context) (uint64, error) {
	st, err := d.stream(ctx)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("auth: dead letters: %w", err)
	}
	if err := st.Purge(ctx); err != nil {
		return 0, fmt.Errorf("auth: purge dead letters: %w", err)
	}
	return info.State.Msgs, nil
}

// deadResponse is the answer of the dead-letter list.
type deadResponse struct {
	// Kept is false when dead letters are not kept (core mode): they are
	// published on the dead-letter subject only, for whoever subscribes.
	Kept     bool         `json:"kept"`
	Messages []DeadLetter `json:"messages"`
}

func (s *Server) adminDead(w http.ResponseWriter, r *http.Request, c caller) {
	if s.admin.DeadLetters == nil {
		s.writeJSON(w, deadResponse{Messages: []DeadLetter{}})
		return
	}
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	list, err := s.admin.DeadLetters.List(r.Context(), DeadFilter{Code: q.Get("code"), Channel: q.Get("channel"), Limit: limit})
	if err != nil {
		s.adminFailed(w, "dead-letter list", c, err)
		return
	}
	s.writeJSON(w, deadResponse{Kept: true, Messages: list})
}

// republishResult is the outcome of one re-publish.
type republishResult struct {
	Seq   uint64 `json:"seq"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// maxRepublish bounds the dead letters re-published by one request.
const maxRepublish = 500

func (s *Server) adminRepublish(w http.ResponseWriter, r *http.Request, c caller) {
	var req struct {
		Seqs []uint64 `json:"seqs"`
	}
	if !s.readBody(w, r, &req, false) {
		return
	}
	if s.admin.DeadLetters == nil {
		s.adminError(w, http.StatusConflict, "dead letters are not kept here (core mode)")
		return
	}
	if len(req.Seqs) == 0 || len(req.Seqs) > maxRepublish {
		s.adminError(w, http.StatusBadRequest, fmt.Sprintf("seqs: want 1 to %d sequence numbers", maxRepublish))
		return
	}
	results := make([]republishResult, 0, len(req.Seqs))
	ok := 0
	for _, seq := range req.Seqs {
		res := republishResult{Seq: seq, OK: true}
		if err := s.admin.DeadLetters.Republish(r.Context(), seq); err != nil {
			res.OK, res.Error = false, err.Error()
		} else {
			ok++
		}
		results = append(results, res)
	}
	s.log.Info("admin: dead letters re-published", zap.String("by", c.id.Username),
		zap.Uint64s("seqs", req.Seqs), zap.Int("ok", ok), zap.Int("failed", len(req.Seqs)-ok))
	s.writeJSON(w, struct {
		Results []republishResult `json:"results"`
	}{results})
}

func (s *Server) adminPurge(w http.ResponseWriter, r *http.Request, c caller) {
	var req struct {
		Confirm bool `json:"confirm"`
	}
	if !s.readBody(w, r, &req, false) {
		return
	}
	if !req.Confirm {
		s.adminError(w, http.StatusBadRequest, `purging every dead letter needs {"confirm":true}`)
		return
	}
	if s.admin.DeadLetters == nil {
		s.adminError(w, http.StatusConflict, "dead letters are not kept here (core mode)")
		return
	}
	n, err := s.admin.DeadLetters.Purge(r.Context())
	if err != nil {
		s.adminFailed(w, "dead-letter purge", c, err)
		return
	}
	s.log.Info("admin: dead letters purged", zap.String("by", c.id.Username), zap.Uint64("purged", n))
	s.writeJSON(w, struct {
		Purged uint64 `json:"purged"`
	}{n})
}
