#!/usr/bin/env bash
# Build Dockerfile.server and Dockerfile.operator without a Docker engine: buildah (vfs storage,
# chroot isolation) on a base image made here from Debian packages, with wheels made on the host,
# so no container registry is needed. The same Dockerfiles build with `docker build` against the
# public base image; see README.md.
#
#   hack/images.sh [all]          base + wheelhouse + both images (each step reused when unchanged)
#   hack/images.sh base           only the local base image
#   hack/images.sh sizes          print the images' sizes
#   hack/images.sh export DIR     write each built image as an OCI archive in DIR (named by its build
#                                 inputs, so an unchanged image is not written again); prints the paths
#   hack/images.sh buildah ARGS   run buildah on this script's storage (e.g. `buildah images`)
#
# Everything lives outside the repo in $MLMODEL_CACHE_DIR/images (default ~/.cache/mlmodel-operator/images):
# buildah's storage, the base image's OCI archive (keyed by BASE_KEY) and the wheelhouse (keyed by pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

CACHE_DIR=${MLMODEL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mlmodel-operator}
IMAGES_DIR=$CACHE_DIR/images
STORAGE_ROOT=$IMAGES_DIR/storage
RUN_ROOT=${MLMODEL_IMAGES_RUNROOT:-/run/mlmodel-operator-images}
PYTHON=${PYTHON:-$REPO/.venv/bin/python}

# The local base: Debian bookworm (minbase) + Debian's python3 (3.11, the project's Python) + pip.
# Bump BASE_REVISION whenever the recipe below changes: the cached archive is keyed by it.
BASE_SUITE=bookworm
BASE_PYTHON=3.11
BASE_REVISION=2
BASE_IMAGE=${MLMODEL_BASE_IMAGE:-localhost/mlmodel-base:$BASE_SUITE-py$BASE_PYTHON}
BASE_KEY=$BASE_SUITE-py$BASE_PYTHON-r$BASE_REVISION
BASE_ARCHIVE=$IMAGES_DIR/mlmodel-base-$BASE_KEY.oci.tar
BASE_PACKAGES=python3,python3-pip,python-is-python3,ca-certificates,libgomp1  # libgomp1: LightGBM's OpenMP runtime

SERVER_IMAGE=${MLMODEL_SERVER_IMAGE:-localhost/mlmodel-server:dev}
OPERATOR_IMAGE=${MLMODEL_OPERATOR_IMAGE:-localhost/mlmodel-operator:dev}
INPUTS_LABEL=dev.mlops.mlmodel.build-inputs

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'hack/images.sh: %s\n' "$*" >&2; exit 1; }

bh() { buildah --root "$STORAGE_ROOT" --runroot "$RUN_ROOT" --storage-driver vfs "$@"; }

ensure_tools() {
    [[ $(id -u) == 0 ]] || die "needs root (debootstrap, and buildah's vfs storage with chroot isolation)"
    local missing=()
    command -v buildah >/dev/null || missing+=(buildah)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if ((${#missing[@]})); then
        log "installing ${missing[*]} from Debian packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    [[ -x $PYTHON ]] || die "$PYTHON is missing: run 'make venv' first"
    mkdir -p "$IMAGES_DIR" "$RUN_ROOT"
}

image_label() {  # image label -> value ('' when the image or the label is missing)
    bh inspect --type image --format "{{index .OCIv1.Config.Labels \"$2\"}}" "$1" 2>/dev/null | sed 's/^<no value>$//' || true
}

image_exists() { bh inspect --type image "$1" >/dev/null 2>&1; }

# The main Debian archive the host's apt uses (so that a mirror configured on the host is used here
# too); empty means debootstrap's own default.
debian_mirror() {
    apt-cache policy 2>/dev/null | awk '$3 ~ /^[a-z]+\/main$/ && $2 ~ /^https?:/ && $2 !~ /security/ {print $2; exit}'
}

build_base() {
    if image_exists "$BASE_IMAGE" && [[ $(image_label "$BASE_IMAGE" dev.mlops.mlmodel.base-key) == "$BASE_KEY" ]]; then
        log "base $BASE_IMAGE ($BASE_KEY) is in the store"
        return
    fi
    if [[ -s $BASE_ARCHIVE ]]; then
        log "base $BASE_IMAGE from the cached archive $BASE_ARCHIVE"
        local id
        id=$(bh pull --quiet "oci-archive:$BASE_ARCHIVE" | tail -1) && bh tag "$id" "$BASE_IMAGE" || true
        if image_exists "$BASE_IMAGE" && [[ $(image_label "$BASE_IMAGE" dev.mlops.mlmodel.base-key) == "$BASE_KEY" ]]; then
            return
        fi
        log "the cached archive did not give $BASE_IMAGE; making it again"
    fi
    local start=$SECONDS ctr mnt mirror
    mirror=$(debian_mirror)
    log "making $BASE_IMAGE: debootstrap --variant=minbase $BASE_SUITE + $BASE_PACKAGES"
    ctr=$(bh from --quiet scratch)
    # shellcheck disable=SC2064
    trap "bh umount '$ctr' >/dev/null 2>&1 || true; bh rm '$ctr' >/dev/null 2>&1 || true" EXIT
    mnt=$(bh mount "$ctr")
    # ${mirror:+...}: empty means debootstrap's default archive.
    debootstrap --variant=minbase --include="$BASE_PACKAGES" "$BASE_SUITE" "$mnt" ${mirror:+"$mirror"} \
        >"$IMAGES_DIR/debootstrap.log" 2>&1 || { tail -20 "$IMAGES_DIR/debootstrap.log" >&2; die "debootstrap failed"; }
    local version
    version=$(chroot "$mnt" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    [[ $version == "$BASE_PYTHON" ]] || die "Debian $BASE_SUITE gave Python $version, not $BASE_PYTHON"
    # Like the public python image: pip installs into /usr/local (no PEP 668 marker), `python` is python3,
    # no apt lists, caches, logs or docs (copyright files stay), and later dpkg installs stay slim too.
    chroot "$mnt" /bin/sh -eu -c '
        rm -f /usr/lib/python3*/EXTERNALLY-MANAGED
        apt-get clean
        rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/log/*.log /var/log/apt/*
        find /usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
        find /usr/share/doc -mindepth 1 -type d -empty -delete
        rm -rf /usr/share/man/* /usr/share/info/* /usr/share/locale/*
        find / -xdev -name __pycache__ -type d -prune -exec rm -rf {} +
        printf "%s\n" "path-exclude /usr/share/doc/*" "path-include /usr/share/doc/*/copyright" \
            "path-exclude /usr/share/man/*" "path-exclude /usr/share/info/*" "path-exclude /usr/share/locale/*" \
            > /etc/dpkg/dpkg.cfg.d/slim
        rm -f /etc/hostname && : > /etc/resolv.conf
    '
    bh config \
        --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 \
        --cmd python3 \
        --label dev.mlops.mlmodel.base-key="$BASE_KEY" \
        --label org.opencontainers.image.description="Debian $BASE_SUITE minbase with Debian's python3 ($BASE_PYTHON) and pip, made by hack/images.sh" \
        "$ctr"
    bh umount "$ctr" >/dev/null
    bh commit --quiet --rm "$ctr" "$BASE_IMAGE" >/dev/null
    trap - EXIT
    log "saving $BASE_IMAGE to $BASE_ARCHIVE"
    rm -f "$BASE_ARCHIVE"
    bh push --quiet "$BASE_IMAGE" "oci-archive:$BASE_ARCHIVE:$BASE_IMAGE" >/dev/null
    log "base made in $((SECONDS - start)) s"
}

# Wheels of every dependency of the server and operator extras (and of the build backend), made on
# the host with the project's own pip at the versions pinned in constraints.txt, keyed by both files. The project's own wheel is left out:
# the Dockerfiles' builder stage builds it from the sources in the build context.
wheelhouse_dir() {
    local key
    key=$( { cat pyproject.toml constraints.txt; "$PYTHON" -c 'import sys, sysconfig; print(sys.version_info[:2], sysconfig.get_platform())'; } | sha256sum | cut -c1-16)
    echo "$IMAGES_DIR/wheelhouse-$key"
}

build_wheelhouse() {
    local dir start=$SECONDS
    dir=$(wheelhouse_dir)
    if [[ -f $dir/.complete ]]; then
        log "wheelhouse $dir is complete"
        return
    fi
    log "making the wheelhouse $dir (pip wheel on the host)"
    rm -rf "$dir" "$dir.partial"
    mkdir -p "$dir.partial"
    "$PYTHON" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$dir.partial" \
        --constraint "$REPO/constraints.txt" setuptools wheel "${REPO}[server,operator]"
    rm -f "$dir.partial"/mlmodel_operator-*.whl
    touch "$dir.partial/.complete"
    mv "$dir.partial" "$dir"
    log "wheelhouse made in $((SECONDS - start)) s ($(find "$dir" -name '*.whl' | wc -l) wheels)"
}

# Everything an image is built from: when none of it changed, the image in the store is reused.
build_inputs() {  # dockerfile
    {
        echo "$BASE_KEY $(bh inspect --type image --format '{{.FromImageID}}' "$BASE_IMAGE")"
        basename "$(wheelhouse_dir)"
        sha256sum "$1" .dockerignore pyproject.toml README.md hack/slim_server_image.py
        find operator server contract -type f -not -path '*/__pycache__/*' -not -name '*.pyc' -not -path '*.egg-info*' -print0 \
            | sort -z | xargs -0 sha256sum
    } | sha256sum | cut -c1-32
}

build_image() {  # dockerfile image
    local dockerfile=$1 image=$2 inputs start=$SECONDS
    inputs=$(build_inputs "$dockerfile")
    if image_exists "$image" && [[ $(image_label "$image" "$INPUTS_LABEL") == "$inputs" ]]; then
        log "$image is up to date ($dockerfile and its inputs unchanged)"
        return
    fi
    log "building $image from $dockerfile on $BASE_IMAGE (buildah, vfs, chroot isolation)"
    # The wheelhouse is bind-mounted on /mnt for every RUN and pip reads PIP_NO_INDEX/PIP_FIND_LINKS
    # from the build args (declared in the builder stage): no registry is asked. /mnt exists in every
    # Debian-based image, so the mount leaves no mount-point directory behind in the final image.
    # With docker build both args stay unset and pip uses the index as usual.
    bh bud --quiet --isolation chroot --network host --pull=never --layers=false \
        --file "$dockerfile" \
        --build-arg BASE_IMAGE="$BASE_IMAGE" \
        --build-arg PIP_NO_INDEX=1 \
        --build-arg PIP_FIND_LINKS=/mnt \
        --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
        --volume "$(wheelhouse_dir):/mnt:ro" \
        --label "$INPUTS_LABEL=$inputs" \
        --tag "$image" . >/dev/null
    log "$image built in $((SECONDS - start)) s"
    bh images --filter dangling=true --quiet | xargs -r buildah --root "$STORAGE_ROOT" --runroot "$RUN_ROOT" --storage-driver vfs rmi >/dev/null 2>&1 || true
}

sizes() {
    local image
    for image in "$BASE_IMAGE" "$SERVER_IMAGE" "$OPERATOR_IMAGE"; do
        image_exists "$image" || continue
        bh images --format '{{.Name}}:{{.Tag}}  {{.Size}}' "$image" | head -1
    done
}

# The real node's containerd imports these archives (hack/realnode.py): its kubelet never pulls.
export_archives() {  # dir
    local dir=$1 image inputs archive
    mkdir -p "$dir" "$RUN_ROOT"
    for image in "$SERVER_IMAGE" "$OPERATOR_IMAGE"; do
        image_exists "$image" || continue
        inputs=$(image_label "$image" "$INPUTS_LABEL")
        archive="$dir/$(basename "${image%%:*}")-${inputs:-unlabelled}.oci.tar"
        if [[ ! -s $archive ]]; then
            rm -f "$dir/$(basename "${image%%:*}")"-*.oci.tar
            bh push --quiet "$image" "oci-archive:$archive.partial:$image" >/dev/null
            mv "$archive.partial" "$archive"
        fi
        echo "$archive"
    done
}

with_lock() {
    mkdir -p "$IMAGES_DIR"
    exec 9>"$IMAGES_DIR/.lock"
    flock 9
}

case ${1:-all} in
    all)
        ensure_tools; with_lock
        start=$SECONDS
        build_base
        build_wheelhouse
        build_image Dockerfile.server "$SERVER_IMAGE"
        build_image Dockerfile.operator "$OPERATOR_IMAGE"
        log "images ready in $((SECONDS - start)) s; sizes (uncompressed):"
        sizes
        ;;
    base) ensure_tools; with_lock; build_base; sizes ;;
    sizes) sizes ;;
    export) [[ -n ${2:-} ]] || die "usage: hack/images.sh export DIR"; with_lock; export_archives "$2" ;;
    buildah) shift; exec buildah --root "$STORAGE_ROOT" --runroot "$RUN_ROOT" --storage-driver vfs "$@" ;;
    *) die "unknown command '$1' (all, base, sizes, export DIR, buildah ARGS)" ;;
esac
