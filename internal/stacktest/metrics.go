package stacktest

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// metricsClient reads /metrics; a process that does not answer within
// its timeout counts as not answering.
var metricsClient = &http.Client{Timeout: time.Second}

// Metric reads the value of the unlabelled metric name (e.g.
// "instant_bridge_relayed_total") from http://addr/metrics, the
// Prometheus text format that instant's processes serve.
func Metric(addr, name string) (float64, error) {
	resp, err := metricsClient.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s/metrics: %s", addr, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s/metrics: no metric %s", addr, name)
}
