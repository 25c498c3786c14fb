# The app-image: one binary for every role (solver, worker, webserver, and the one-off
# commands), on a slim Debian image that also has `sh` and `psql`.

FROM rust:1-slim-bookworm AS build
WORKDIR /usr/src/swpt-trade
COPY . .
RUN cargo build --release --locked --bin swpt-trade

FROM debian:bookworm-slim AS app-image
# postgresql-client: `psql` for operators; iproute2: `ip`, used by entrypoint.sh;
# ca-certificates: TLS to the broker and to debtor info servers.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates iproute2 postgresql-client \
    && rm -rf /var/lib/apt/lists/*
ENV APP_ROOT_DIR=/usr/src/app \
    WEBSERVER_PORT=8080
RUN groupadd --system swpt_trade \
    && useradd --system --gid swpt_trade --home-dir "$APP_ROOT_DIR" swpt_trade
WORKDIR /usr/src/app
COPY --from=build /usr/src/swpt-trade/target/release/swpt-trade /usr/local/bin/swpt-trade
COPY entrypoint.sh /usr/src/app/entrypoint.sh
# `webserver` is the binary alone on WEBSERVER_PORT: it checks OAuth 2.0 tokens itself
# (OAUTH2_INTROSPECT_URL) and serves Swagger UI from the binary, so the image needs neither
# Oathkeeper nor supervisord. `solver` and `worker` serve metrics on APP_METRICS_PORT when set.
EXPOSE 8080
RUN chown -R swpt_trade:swpt_trade /usr/src/app
USER swpt_trade:swpt_trade
ENTRYPOINT ["/usr/src/app/entrypoint.sh"]
CMD ["worker"]
