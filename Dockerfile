# syntax=docker/dockerfile:1

# Build: compile TypeScript, then keep only production dependencies.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The SDK is a workspace of the root package: npm ci needs its manifest.
COPY clients/sdk/package.json clients/sdk/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY protocol protocol
COPY server server
COPY clients clients
RUN npm run build && npm prune --omit=dev

# Run: the compiled gateway as the unprivileged `node` user.
FROM node:24-bookworm-slim
ENV NODE_ENV=production PORT=8080
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules node_modules
COPY --from=build --chown=node:node /app/dist dist
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
STOPSIGNAL SIGTERM
# The same command as `npm start` (a unit test keeps the two equal).
CMD ["node", "dist/server/main.js"]
