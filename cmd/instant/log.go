package main

import (
	"net/url"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newLogger returns a JSON logger writing to the command's stderr, one
// line per event, at s.LogLevel (INSTANT_LOG_LEVEL).
func newLogger(env *Env, s settings) *zap.Logger {
	level := zapcore.InfoLevel
	_ = level.Set(s.LogLevel) // one of logLevels
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(env.Stderr)), level)
	return zap.New(core)
}

// redactURL hides the password of a URL, for messages and logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
