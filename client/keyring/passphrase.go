package keyring

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/term"
)

// PassphraseFromEnv returns a passphrase function that reads the passphrase
// from the environment variable envVar (for example "SPARE_PASSPHRASE"),
// ignoring the prompt. It fails if the variable is not set.
func PassphraseFromEnv(envVar string) func(prompt string) ([]byte, error) {
	return func(string) ([]byte, error) {
		v, ok := os.LookupEnv(envVar)
		if !ok {
			return nil, fmt.Errorf("environment variable %s is not set", envVar)
		}
		return []byte(v), nil
	}
}

// PassphraseFromTerminal returns a passphrase function that writes the
// prompt to the controlling terminal (/dev/tty) and reads a line from it
// without echo, so it works even when stdin and stdout are redirected.
func PassphraseFromTerminal() func(prompt string) ([]byte, error) {
	return func(prompt string) ([]byte, error) {
		in, out := "/dev/tty", "/dev/tty"
		if runtime.GOOS == "windows" {
			in, out = "CONIN$", "CONOUT$"
		}
		tty, err := os.OpenFile(in, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("no terminal to read the passphrase from (%v); supply it through the environment instead", err)
		}
		defer tty.Close()
		w := tty
		if out != in {
			if w, err = os.OpenFile(out, os.O_WRONLY, 0); err != nil {
				return nil, fmt.Errorf("open terminal: %w", err)
			}
			defer w.Close()
		}
		if !term.IsTerminal(int(tty.Fd())) {
			return nil, fmt.Errorf("%s is not a terminal", in)
		}
		if _, err := fmt.Fprint(w, prompt); err != nil {
			return nil, fmt.Errorf("write prompt: %w", err)
		}
		pass, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(w)
		if err != nil {
			return nil, fmt.Errorf("read passphrase: %w", err)
		}
		return pass, nil
	}
}
