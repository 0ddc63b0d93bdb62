package instant

import "fmt"

// SettingError is an invalid setting, in the one style every
// configuration error of instant takes: the instant command's (read from
// the environment) and the libraries' Config.Validate. Its message names
// the setting first, as the user sets it:
//
//	INSTANT_REPLICAS (Replicas): 7 is not between 1 and 5, JetStream's limit
//	NATS_CERT: NATS_CERT and NATS_KEY go together
//	RetryMin: 5s exceeds RetryMax 1s
//
// that is the environment variable and, in parentheses, the Config field
// it sets; the variable alone for a setting of the instant command only;
// the field alone for a field no variable sets. Match it with errors.As;
// a Validate that finds several joins them (errors.Join).
type SettingError struct {
	// Setting is the environment variable, such as "INSTANT_REPLICAS";
	// "" for a Config field that no variable sets.
	Setting string
	// Field is the Config field, such as "Replicas"; "" for a setting the
	// instant command reads for itself, such as "NATS_URL".
	Field string
	// Err says what is wrong with the value.
	Err error
}

// SettingErrorf returns a *SettingError whose Err is fmt.Errorf(format,
// args...).
func SettingErrorf(setting, field, format string, args ...any) *SettingError {
	return &SettingError{Setting: setting, Field: field, Err: fmt.Errorf(format, args...)}
}

func (e *SettingError) Error() string {
	name := e.Setting
	switch {
	case e.Setting == "":
		name = e.Field
	case e.Field != "" && e.Field != e.Setting:
		name += " (" + e.Field + ")"
	}
	return name + ": " + e.Err.Error()
}

func (e *SettingError) Unwrap() error { return e.Err }
