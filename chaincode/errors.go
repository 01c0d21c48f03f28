package chaincode

import (
	"errors"
	"fmt"
	"strings"
)

// Code classifies a refusal. It leads the error message ("forbidden: ..."), so that it
// survives the trip through Fabric's gateway, which carries only the message.
type Code string

const (
	CodeInvalid   Code = "invalid"
	CodeNotFound  Code = "not found"
	CodeForbidden Code = "forbidden"
	// CodeConflict: the transaction does not apply in the current state.
	CodeConflict Code = "conflict"
	// CodeNotYet: Decide before every live cluster has bid and before the deadline.
	CodeNotYet Code = "not yet"
)

var codes = []Code{CodeInvalid, CodeNotFound, CodeForbidden, CodeConflict, CodeNotYet}

// Error is a refusal by the contract; nothing was written.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Msg }

func refuse(code Code, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of a refusal, found in err's chain or, for errors that crossed a
// process boundary as text, in its message. It returns "" for other errors.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	msg := err.Error()
	best, at := Code(""), -1
	// The earliest "code: " wins: wrappers add their own text before it.
	for _, c := range codes {
		if i := strings.Index(msg, string(c)+": "); i >= 0 && (at < 0 || i < at) {
			best, at = c, i
		}
	}
	return best
}
