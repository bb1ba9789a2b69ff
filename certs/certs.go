// Package certs makes and pins the TLS certificates of provider APIs.
//
// A provider serves its tenant API over HTTPS with a self-signed certificate
// (Generate, WriteFiles, LoadKeyPair, LoadOrGenerate) and records the SHA-256
// fingerprint of the certificate's DER encoding (Fingerprint) on the ledger.
// Tenants trust no certificate authority: PinnedTLSConfig and
// PinnedHTTPClient accept exactly the one leaf certificate whose fingerprint
// equals the pinned value, in the spirit of SSH host keys. Host names, chains
// and validity periods are deliberately not checked: the ledger record is the
// only trust anchor, and the TLS handshake itself proves that the server holds
// the private key of that leaf.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sparenet/spare/ledger/tx"
)

// File names used by WriteFiles and LoadOrGenerate inside their directory.
const (
	CertFileName = "cert.pem"
	KeyFileName  = "key.pem"
)

// clockSkew backdates NotBefore so that peers with slightly slow clocks accept a fresh certificate.
const clockSkew = time.Hour

// Generate makes a self-signed ECDSA P-256 server certificate valid for
// validFor from now, with a subject alternative name for every host (an IP
// literal, with or without [brackets], becomes an IP SAN; anything else a DNS
// SAN). It returns the certificate and its PKCS#8 private key, both PEM.
// hosts may be empty: pinning does not look at names.
func Generate(hosts []string, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	if validFor <= 0 {
		return nil, nil, fmt.Errorf("certs: validity %v must be positive", validFor)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("certs: serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "spare-provider", Organization: []string{"Spare provider"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			return nil, nil, errors.New("certs: empty host name")
		}
		if ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if len(hosts) > 0 {
		tmpl.Subject.CommonName = strings.TrimSpace(hosts[0])
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: marshal key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// Fingerprint is the SHA-256 of a certificate's DER encoding: the value recorded on the ledger and pinned by tenants.
func Fingerprint(certDER []byte) tx.Hash { return tx.Hash(sha256.Sum256(certDER)) }

// FingerprintPEM decodes the first CERTIFICATE block of certPEM and returns its Fingerprint.
func FingerprintPEM(certPEM []byte) (tx.Hash, error) {
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return tx.Hash{}, errors.New("certs: no CERTIFICATE block in PEM data")
		}
		if b.Type == "CERTIFICATE" {
			return Fingerprint(b.Bytes), nil
		}
	}
}

// LoadKeyPair loads a PEM certificate and key (as written by WriteFiles) for a
// server's tls.Config, and returns the fingerprint of the leaf certificate.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, tx.Hash, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, tx.Hash{}, fmt.Errorf("certs: load key pair: %w", err)
	}
	return c, Fingerprint(c.Certificate[0]), nil
}

// WriteFiles writes certPEM to dir/cert.pem (mode 0644) and keyPEM to
// dir/key.pem (mode 0600), creating dir (0700) if needed. Each file is written
// to a temporary file and renamed into place, so a reader never sees half a
// file and the key is never, even briefly, readable by others.
func WriteFiles(dir string, certPEM, keyPEM []byte) (certFile, keyFile string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("certs: %w", err)
	}
	certFile = filepath.Join(dir, CertFileName)
	keyFile = filepath.Join(dir, KeyFileName)
	if err := writeAtomic(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := writeAtomic(certFile, certPEM, 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

func writeAtomic(path string, data []byte, mode os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*") // created 0600
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("certs: write %s: %w", path, err)
		}
	}()
	if err = f.Chmod(mode); err != nil { // explicit, so the umask does not matter
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// LoadOrGenerate loads dir/cert.pem and dir/key.pem, or, when neither exists,
// generates a certificate for hosts valid for validFor and writes them there
// first. It returns the certificate and its fingerprint. A directory holding
// only one of the two files is an error rather than silently replaced, since
// replacing the certificate changes the fingerprint recorded on the ledger.
func LoadOrGenerate(dir string, hosts []string, validFor time.Duration) (tls.Certificate, tx.Hash, error) {
	certFile := filepath.Join(dir, CertFileName)
	keyFile := filepath.Join(dir, KeyFileName)
	_, cerr := os.Stat(certFile)
	_, kerr := os.Stat(keyFile)
	switch {
	case cerr == nil && kerr == nil:
		return LoadKeyPair(certFile, keyFile)
	case errors.Is(cerr, os.ErrNotExist) && errors.Is(kerr, os.ErrNotExist):
		certPEM, keyPEM, err := Generate(hosts, validFor)
		if err != nil {
			return tls.Certificate{}, tx.Hash{}, err
		}
		if _, _, err := WriteFiles(dir, certPEM, keyPEM); err != nil {
			return tls.Certificate{}, tx.Hash{}, err
		}
		return LoadKeyPair(certFile, keyFile)
	case cerr != nil && !errors.Is(cerr, os.ErrNotExist):
		return tls.Certificate{}, tx.Hash{}, fmt.Errorf("certs: %w", cerr)
	case kerr != nil && !errors.Is(kerr, os.ErrNotExist):
		return tls.Certificate{}, tx.Hash{}, fmt.Errorf("certs: %w", kerr)
	default:
		return tls.Certificate{}, tx.Hash{}, fmt.Errorf("certs: %s holds only one of %s and %s; restore or remove it",
			dir, CertFileName, KeyFileName)
	}
}

// FingerprintMismatchError is the handshake error of a pinned client whose
// server presented a certificate other than the pinned one. It survives
// wrapping by net/http, so errors.As finds it in a client's error.
type FingerprintMismatchError struct {
	Expected tx.Hash // the pinned fingerprint
	Got      tx.Hash // the fingerprint of the leaf the server presented (zero if it presented none)
}

func (e *FingerprintMismatchError) Error() string {
	if e.Got.IsZero() {
		return fmt.Sprintf("certs: server presented no certificate; expected fingerprint %s", e.Expected)
	}
	return fmt.Sprintf("certs: server certificate fingerprint mismatch: expected %s, got %s", e.Expected, e.Got)
}

// PinnedTLSConfig is a client TLS configuration that accepts exactly one
// server certificate: the leaf whose DER SHA-256 equals fp (compared in
// constant time). Chains, host names and validity dates are not checked (see
// the package doc). A zero fp accepts nothing. The check runs in
// VerifyConnection, which, unlike VerifyPeerCertificate, also runs on resumed
// sessions. Any other mismatch fails the handshake with a *FingerprintMismatchError.
func PinnedTLSConfig(fp tx.Hash) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if fp.IsZero() {
				return errors.New("certs: no certificate fingerprint pinned")
			}
			if len(cs.PeerCertificates) == 0 {
				return &FingerprintMismatchError{Expected: fp}
			}
			got := Fingerprint(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], fp[:]) != 1 {
				return &FingerprintMismatchError{Expected: fp, Got: got}
			}
			return nil
		},
	}
}

// PinnedHTTPClient is an HTTP client (HTTP/2 where offered) whose connections
// accept only the server certificate with fingerprint fp; timeout bounds each
// whole request (0: none). Use one client per provider: each pins one
// certificate. To sign requests too, wrap its transport:
//
//	c := certs.PinnedHTTPClient(fp, 30*time.Second)
//	c.Transport = &reqsig.Transport{Base: c.Transport, Key: priv}
func PinnedHTTPClient(fp tx.Hash, timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = PinnedTLSConfig(fp)
	t.ForceAttemptHTTP2 = true
	return &http.Client{Transport: t, Timeout: timeout}
}
