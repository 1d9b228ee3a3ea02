/**
 * Checks on the extension as shipped: the manifest's permissions, that every file it names
 * exists, that content scripts are classic scripts, and that no code writes HTML, evaluates
 * strings or loads remote code.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';

import { EXTENSION } from './helpers.js';

const manifest = JSON.parse(readFileSync(join(EXTENSION, 'manifest.json'), 'utf8'));
const PROVIDERS = ['https://claude.ai/*', 'https://chatgpt.com/*', 'https://gemini.google.com/*'];

function sources(dir = EXTENSION) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'tests' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(js|html)$/.test(name)) out.push(p);
  }
  return out;
}

describe('manifest', () => {
  it('asks for storage only, and exactly the providers and the local server', () => {
    assert.equal(manifest.manifest_version, 3);
    assert.deepEqual(manifest.permissions, ['storage']);
    assert.deepEqual(manifest.host_permissions, [...PROVIDERS, 'http://127.0.0.1/*', 'http://localhost/*']);
    assert.equal(manifest.optional_permissions, undefined);
    assert.equal(manifest.externally_connectable, undefined);
    assert.equal(manifest.web_accessible_resources, undefined);
    assert.ok(!JSON.stringify(manifest).includes('<all_urls>'));
  });

  it('runs one worker for both browsers, as a module', () => {
    assert.deepEqual(manifest.background, { service_worker: 'background.js', scripts: ['background.js'], type: 'module' });
    assert.match(manifest.browser_specific_settings.gecko.id, /@/);
    assert.ok(Number.parseFloat(manifest.browser_specific_settings.gecko.strict_min_version) >= 129); // Ed25519 in WebCrypto
  });

  it('injects per site its own adapter, and only on that site', () => {
    const bySite = Object.fromEntries(manifest.content_scripts.map((cs) => [cs.matches.join(), cs.js]));
    assert.deepEqual(Object.keys(bySite), PROVIDERS);
    for (const [site, name] of [[PROVIDERS[0], 'claude'], [PROVIDERS[1], 'chatgpt'], [PROVIDERS[2], 'gemini']]) {
      assert.deepEqual(bySite[site], ['adapters/common.js', `adapters/${name}.js`, 'content/page-badge.js', 'content/watcher.js', 'content/start.js']);
    }
    assert.ok(manifest.content_scripts.every((cs) => !cs.all_frames));
  });

  it('names only files that exist', () => {
    const files = [manifest.background.service_worker, manifest.action.default_popup, manifest.options_ui.page,
      ...manifest.content_scripts.flatMap((cs) => cs.js), ...Object.values(manifest.icons), ...Object.values(manifest.action.default_icon)];
    for (const f of files) assert.ok(existsSync(join(EXTENSION, f)), f);
  });
});

describe('sources', () => {
  it('content scripts are classic scripts (no import/export), as MV3 requires', () => {
    for (const f of new Set(manifest.content_scripts.flatMap((cs) => cs.js))) {
      const text = readFileSync(join(EXTENSION, f), 'utf8');
      assert.ok(!/^\s*(import|export)\s/m.test(text), f);
    }
  });

  it('write no HTML, evaluate no strings, load no remote code', () => {
    for (const f of sources()) {
      const text = readFileSync(f, 'utf8');
      const name = relative(EXTENSION, f);
      assert.ok(!/\.innerHTML\s*=|\.outerHTML\s*=|insertAdjacentHTML|document\.write/.test(text), `${name} writes HTML`);
      assert.ok(!/\beval\(|new Function\(/.test(text), `${name} evaluates strings`);
      assert.ok(!/<script[^>]+src=["']https?:/.test(text), `${name} loads a remote script`);
      assert.ok(!/import\s*\(?\s*['"]https?:/.test(text), `${name} imports remote code`);
    }
  });

  it('the content scripts never see the token: no storage access there', () => {
    for (const f of new Set(manifest.content_scripts.flatMap((cs) => cs.js))) {
      const text = readFileSync(join(EXTENSION, f), 'utf8');
      assert.ok(!/storage\.(local|session|sync)/.test(text), f);
    }
  });
});
