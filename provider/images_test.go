package provider

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sparenet/spare/runtime/docker"
)

func TestConfigImageAllowed(t *testing.T) {
	c := DefaultConfig()
	for image, ok := range map[string]bool{
		"python:3.12":                      true,
		"docker.io/library/ubuntu:24.04":   true,
		"nvcr.io/nvidia/pytorch:24.05-py3": true,
		"pytorch/pytorch:latest":           true,
		"private/model:v2":                 false,
		"ghcr.io/someone/python":           false,
	} {
		err := c.ImageAllowed(image)
		if (err == nil) != ok {
			t.Errorf("ImageAllowed(%q) = %v, want allowed %v", image, err, ok)
		}
		if err != nil && (!errors.Is(err, docker.ErrImageNotAllowed) || !strings.Contains(err.Error(), "docker_images") || !strings.Contains(err.Error(), image)) {
			t.Errorf("ImageAllowed(%q): %v: want an error naming the image and docker_images", image, err)
		}
	}
	if err := c.ImageAllowed("private/model:v2"); !strings.Contains(err.Error(), `"docker.io/private/model"`) {
		t.Errorf("the fix should name the repository: %v", err)
	}
	if err := c.ImageAllowed("Not An Image"); err == nil || errors.Is(err, docker.ErrImageNotAllowed) || !strings.Contains(err.Error(), "image") {
		t.Errorf("invalid reference: %v", err)
	}
	c.DockerImages = []string{"*"}
	if err := c.ImageAllowed("private/model:v2"); err != nil {
		t.Errorf("*: %v", err)
	}
	c.DockerImages = nil
	if err := c.ImageAllowed("python"); !errors.Is(err, docker.ErrImageNotAllowed) {
		t.Errorf("empty list: %v", err)
	}
}

func TestValidateDockerImages(t *testing.T) {
	base := DefaultConfig()
	base.Docker = true
	base.Hardware = HardwareConfig{CPUCores: 1, MemoryMiB: 1024, DiskMiB: 1024}
	if err := base.Validate(); err != nil {
		t.Fatalf("default config with docker: %v", err)
	}
	for _, tc := range []struct {
		name   string
		edit   func(*Config)
		substr string
	}{
		{"bad image", func(c *Config) { c.DockerImages = []string{"python", "Bad Name"} }, "docker_images: entry 1"},
		{"empty with docker", func(c *Config) { c.DockerImages = nil }, "docker_images is empty while docker = true"},
		{"bad registry", func(c *Config) { c.DockerRegistries = []string{"https://ghcr.io"} }, "docker_registries: entry 0"},
	} {
		c := base
		c.DockerImages = slices.Clone(base.DockerImages)
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.substr)
		}
	}
	c := base
	c.Docker, c.DockerImages = false, nil
	if err := c.Validate(); err != nil {
		t.Errorf("no docker, no images: %v", err)
	}
}

// TestDockerImagesFromFile: docker_images in provider.toml replaces the default list; without it the default
// applies.
func TestDockerImagesFromFile(t *testing.T) {
	c := DefaultConfig()
	c.Hardware = HardwareConfig{CPUCores: 1, MemoryMiB: 1024, DiskMiB: 1024}
	path := filepath.Join(t.TempDir(), ConfigFile)
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "docker_images") && !strings.HasPrefix(line, "docker_registries") {
			kept = append(kept, line)
		}
	}
	without := strings.Join(kept, "\n")
	if err := os.WriteFile(path, []byte(without), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.DockerImages, DefaultDockerImages()) || len(got.DockerRegistries) != 0 {
		t.Fatalf("without the keys: images %v registries %v", got.DockerImages, got.DockerRegistries)
	}
	with := "docker_images = ['ghcr.io/org/img']\ndocker_registries = ['ghcr.io']\n" + without
	if err := os.WriteFile(path, []byte(with), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err = LoadConfig(path); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.DockerImages, []string{"ghcr.io/org/img"}) || !slices.Equal(got.DockerRegistries, []string{"ghcr.io"}) {
		t.Fatalf("with the keys: images %v registries %v", got.DockerImages, got.DockerRegistries)
	}
}
