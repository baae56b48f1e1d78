# Container images without a Docker engine (buildah, vfs storage, chroot isolation), built offline on a
# base made from Debian packages; see hack/images.sh. Included by the Makefile.

.PHONY: images
images: venv ## Build both images with buildah (local Debian base, host wheelhouse; reused when unchanged)
	hack/images.sh all

.PHONY: images-base
images-base: ## Make (or reuse) the local base image localhost/mlmodel-base:bookworm-py3.11
	hack/images.sh base
