package provider

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/distribution/reference"

	"github.com/sparenet/spare/runtime/docker"
)

// DefaultDockerImages is docker_images when provider.toml does not set it: the official repositories of the
// base images GPU jobs are commonly built on. They run only once they are on the machine (pulled, or loaded
// with `spare provider images load`), unless docker_registries lets the daemon pull them. Images the provider
// built or loaded for itself are not allowed unless named.
func DefaultDockerImages() []string {
	return []string{
		"docker.io/library/python",
		"docker.io/library/ubuntu",
		"docker.io/library/debian",
		"docker.io/pytorch/pytorch",
		"nvcr.io/nvidia/pytorch",
		"nvcr.io/nvidia/cuda",
	}
}

// validateDockerImages checks docker_images and docker_registries.
func (c *Config) validateDockerImages() error {
	if err := docker.CheckAllowlist(c.DockerImages); err != nil {
		return fmt.Errorf("docker_images: %w", err)
	}
	if c.Docker && len(c.DockerImages) == 0 {
		return errors.New(`docker_images is empty while docker = true: no job's image could run; list the images tenants may run (e.g. docker_images = ["docker.io/library/python"], or "*" for any image), or set docker = false`)
	}
	if err := docker.CheckRegistries(c.DockerRegistries); err != nil {
		return fmt.Errorf("docker_registries: %w", err)
	}
	return nil
}

// ImageAllowed returns nil when docker_images allows a job's image, and otherwise an error that names the image,
// the field and how to allow it (matching docker.ErrImageNotAllowed when the image is valid but not listed).
// The docker runtime checks the same list again at start.
func (c *Config) ImageAllowed(image string) error {
	err := docker.ImageAllowed(c.DockerImages, image)
	if err == nil {
		return nil
	}
	if !errors.Is(err, docker.ErrImageNotAllowed) {
		return fmt.Errorf("the job's image: %w", err)
	}
	repo := image
	if n, perr := reference.ParseNormalizedNamed(image); perr == nil {
		repo = n.Name()
	}
	return fmt.Errorf("%w; this provider runs only the images listed in docker_images in provider.toml (to run it, add %q or its digest there)", err, repo)
}

// DockerScope names this daemon's containers and networks apart from other daemons' on the same engine
// (docker.Runtime.Scope): its uid_base, which two daemons on one machine must not share. Empty with the
// default base.
func (c *Config) DockerScope() string {
	if c.UIDBase == 0 {
		return ""
	}
	return "u" + strconv.FormatUint(uint64(c.UIDBase), 10)
}
