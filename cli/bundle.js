// Bundles the `convoy` CLI (dist/cli/main.js, from tsc) into one file,
// dist/cli/convoy.bundle.js, which bin/convoy loads with a V8 code cache.
// A CLI start then reads and compiles one file instead of resolving and
// compiling some 150 modules (figures in docs/cli.md). The programs the CLI
// starts lazily (manager, agent, lab) stay separate files, required from
// dist/ only when their verbs run. Run by `npm run build` after tsc.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const esbuild = require('esbuild');

const dist = path.join(__dirname, '..', 'dist');
const out = path.join(dist, 'cli', 'convoy.bundle.js');

/** Imports from cli/ of manager/, agent/, lab/ and the compose loader stay requires of their dist/ files. */
const programsStayOut = {
  name: 'programs-stay-out',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (a) => {
      const abs = path.resolve(a.resolveDir, a.path);
      const rel = path.relative(dist, abs).split(path.sep).join('/');
      // The Dispatcher's codecs (proto/mod.ts requires them when first used): only the agent and manager use them.
      const dispatcherCodecs = /^proto\/generated\/dispatcher-codec(\.js)?$/.test(rel);
      if (!dispatcherCodecs && !a.importer.startsWith(path.join(dist, 'cli') + path.sep)) return undefined;
      // The compose loader (and the yaml parser it pulls in) too: only the stack verbs that read files load it.
      if (!dispatcherCodecs && !/^(manager|agent|lab)\/|^cli\/stack\/(load|deploy|resolve)(\.js)?$/.test(rel)) return undefined;
      // Constants only (the agent verb's option defaults), needed by every start that builds that verb: bundled.
      if (/^agent\/runtime\/image\/limits(\.js)?$/.test(rel)) return undefined;
      return { path: './' + path.relative(path.dirname(out), abs).split(path.sep).join('/'), external: true };
    });
  },
};

/**
 * commander requires child_process at load for executable subcommands, which
 * Convoy does not use: required when first used instead (1-5 ms of every start).
 */
const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(build) {
    build.onLoad({ filter: /node_modules[\\/]commander[\\/]lib[\\/]command\.js$/ }, (a) => {
      const src = fs.readFileSync(a.path, 'utf8');
      const eager = "const childProcess = require('node:child_process');";
      if (!src.includes(eager)) throw new Error(`${a.path}: no "${eager}" (commander changed: update cli/bundle.js)`);
      return { contents: src.replace(eager, "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };"), loader: 'js' };
    });
  },
};

esbuild
  .build({
    entryPoints: [path.join(dist, 'cli', 'main.js')],
    outfile: out,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    logLevel: 'warning',
    plugins: [programsStayOut, lazyChildProcess],
    // Libraries only some verbs load (events and logs: nats; stacks: yaml;
    // user create and joins: the x509 stack) stay in node_modules: a start
    // reads and deserializes only what every verb may need.
    // protobufjs's reflection and proto-loader: only loadDefinition's json and text forms (tests) use them; the
    // CLI's calls use the build's codecs (proto/generated/*-codec.ts) and protobufjs/minimal.
    external: ['nats', 'nkeys.js', 'tweetnacl', 'yaml', '@peculiar/*', 'reflect-metadata', 'tsyringe', 'asn1js', 'pvtsutils', 'pvutils', 'protobufjs/light', '@grpc/proto-loader'],
    // Smaller to read and to deserialize; names kept for stack traces.
    minifyWhitespace: true,
    minifySyntax: true,
  })
  .then(() => {
    // A cache made for the previous bundle is rejected by V8 anyway; remove it so the first run writes a fresh one.
    fs.rmSync(`${out}.cache`, { force: true });
  })
  .catch((e) => {
    console.error(`cli/bundle.js: ${e.message}`);
    process.exit(1);
  });
