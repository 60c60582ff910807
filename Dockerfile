# Multi-stage build of the one `logmon` binary; compose.yml runs it as migrate, collector,
# detector and generator.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs rustfmt.toml ./
COPY src src
COPY sql sql
COPY migrations migrations
RUN cargo build --release --locked --bin logmon

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/logmon /usr/local/bin/logmon
USER nobody
EXPOSE 8080
ENTRYPOINT ["logmon"]
CMD ["--help"]
