package client

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Reads that the explorer's indexer and every query make many of go through plain HTTP GETs decoded with
// encoding/json into just the fields Spare uses: CometBFT's own client decodes each response twice through
// reflection (its amino-style JSON, then gogoproto's jsonpb), which cost about three times more CPU than the
// request itself on a busy block.

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    string `json:"data"`
}

func (e *rpcError) Error() string {
	return fmt.Sprintf("RPC error %d - %s: %s", e.Code, e.Message, e.Data)
}

// rawGet calls a CometBFT RPC method by URI and decodes its result into out.
func (c *Client) rawGet(ctx context.Context, method string, params url.Values, out any) error {
	base := strings.Replace(c.url, "tcp://", "http://", 1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/"+method+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 256<<20))
	if err != nil {
		return err
	}
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  *rpcError       `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%s: HTTP %d, undecodable answer: %w", method, res.StatusCode, err)
	}
	if env.Error != nil {
		return env.Error
	}
	return json.Unmarshal(env.Result, out)
}

type rawEvent struct {
	Type       string `json:"type"`
	Attributes []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"attributes"`
}

func (e rawEvent) event(txHash string, code uint32) Event {
	ev := Event{Type: e.Type, Attrs: make(map[string]string, len(e.Attributes)), TxHash: txHash, Code: code}
	for _, a := range e.Attributes {
		ev.Attrs[a.Key] = a.Value
	}
	return ev
}

type rawBlock struct {
	BlockID struct {
		Hash string `json:"hash"`
	} `json:"block_id"`
	Block struct {
		Header struct {
			Height          string    `json:"height"`
			Time            time.Time `json:"time"`
			ProposerAddress string    `json:"proposer_address"`
		} `json:"header"`
		Data struct {
			Txs [][]byte `json:"txs"`
		} `json:"data"`
	} `json:"block"`
}

type rawResults struct {
	Height     string `json:"height"`
	TxsResults []struct {
		Code      uint32     `json:"code"`
		Log       string     `json:"log"`
		Codespace string     `json:"codespace"`
		Events    []rawEvent `json:"events"`
	} `json:"txs_results"`
	FinalizeBlockEvents []rawEvent `json:"finalize_block_events"`
}

type rawQuery struct {
	Response struct {
		Code      uint32 `json:"code"`
		Log       string `json:"log"`
		Value     []byte `json:"value"`
		Height    string `json:"height"`
		Codespace string `json:"codespace"`
	} `json:"response"`
}

func heightParam(h int64) url.Values { return url.Values{"height": {strconv.FormatInt(h, 10)}} }

func queryParams(path string, data []byte) url.Values {
	return url.Values{"path": {strconv.Quote(path)}, "data": {"0x" + hex.EncodeToString(data)}}
}
