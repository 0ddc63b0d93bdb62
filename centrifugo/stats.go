package centrifugo

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/centrifugal/gocent/v3"
)

// Subscribers returns, for every channel that has subscribers now, the
// number of distinct users subscribed to it (Centrifugo's channels
// command; the anonymous connections count as one user). Errors are those
// of Unsubscribe.
func (c *Client) Subscribers(ctx context.Context) (map[string]int, error) {
	res, err := c.api.Channels(ctx)
	if err != nil {
		return nil, c.commandError(err)
	}
	out := make(map[string]int, len(res.Channels))
	for name, info := range res.Channels {
		out[name] = int(info.NumUsers)
	}
	return out, nil
}

// Position is where a channel's history stream stands: Offset is the
// number of publications in the current Epoch.
type Position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// Positions returns the history position of each of channels, asked in
// one HTTP request; a channel whose history Centrifugo cannot tell (none
// kept, or refused) is left out. Errors are those of Publish.
func (c *Client) Positions(ctx context.Context, channels []string) (map[string]Position, error) {
	out := make(map[string]Position, len(channels))
	if len(channels) == 0 {
		return out, nil
	}
	pipe := c.api.Pipe()
	for _, ch := range channels {
		if err := pipe.AddHistory(ch, gocent.WithLimit(0)); err != nil {
			return nil, fmt.Errorf("centrifugo: %w", err)
		}
	}
	replies, err := c.api.SendPipe(ctx, pipe)
	if err != nil {
		return nil, c.requestError(err)
	}
	for i, r := range replies {
		if i >= len(channels) || r.Error != nil || len(r.Result) == 0 {
			continue
		}
		var h gocent.HistoryResult
		if json.Unmarshal(r.Result, &h) != nil || h.Epoch == "" {
			continue
		}
		out[channels[i]] = Position{Offset: h.Offset, Epoch: h.Epoch}
	}
	return out, nil
}
