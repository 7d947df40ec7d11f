# The karmada-rs image: the `karmada` binary (apiserver, controller-manager, scheduler,
# init-secrets, agent, ... as subcommands) and `karmadactl`, on distroless (glibc, no shell),
# run as the non-root user 65532. What `karmadactl init` and `deploy/*.yaml` run.
#
#   docker build -t karmada-rs/karmada:v0.1.0 .
#
# The files it adds are laid out by scripts/image-rootfs, which also makes them without
# Docker (`scripts/image-rootfs OUT`); a test checks that layout and what the binaries link.

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN scripts/image-rootfs /rootfs

# glibc 2.36 as in the build stage; libgcc_s, libm and libc are all the binaries need.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /rootfs/ /
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/karmada"]
