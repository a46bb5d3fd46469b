import { useState } from 'preact/hooks';
import type { Api } from '../../api/client.js';
import { Problem } from '../../api/errors.js';
import type { Entry } from '../../api/types.js';
import { symbolicMode } from '../../format.js';
import { FormDialog } from './form-dialog.js';

const WHO: [string, number][] = [
  ['Owner', 6],
  ['Group', 3],
  ['Others', 0],
];
const WHAT: [string, number][] = [
  ['Read', 4],
  ['Write', 2],
  ['Execute', 1],
];
const SPECIAL: [string, number][] = [
  ['Set user id', 0o4000],
  ['Set group id', 0o2000],
  ['Sticky', 0o1000],
];

const octal = (mode: number): string => mode.toString(8).padStart(4, '0');

/** chmod: a grid of checkboxes, or the octal number, kept in step. Only the owner (or root) may. */
export function ChmodDialog({ api, entry, onDone, onClose }: { api: Api; entry: Entry; onDone: (mode: string) => void; onClose: () => void }) {
  const [mode, setMode] = useState(() => Number.parseInt(entry.mode, 8) & 0o7777);
  const [typed, setTyped] = useState(entry.mode);
  const set = (next: number): void => {
    setMode(next);
    setTyped(octal(next));
  };
  const toggle = (bit: number, on: boolean): void => set(on ? mode | bit : mode & ~bit);
  return (
    <FormDialog
      title={`Permissions of ${entry.name}`}
      submitLabel="Apply"
      onClose={onClose}
      action={async () => {
        if (!/^[0-7]{3,4}$/.test(typed)) throw new Problem('The mode is three or four octal digits, like 0644.');
        const value = octal(Number.parseInt(typed, 8));
        await api.chmod(entry.path, value);
        onDone(value);
      }}
    >
      <table class="mode-grid">
        <caption class="sr-only">Permission bits</caption>
        <thead>
          <tr>
            <td />
            {WHAT.map(([what]) => (
              <th key={what} scope="col">
                {what}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {WHO.map(([who, shift]) => (
            <tr key={who}>
              <th scope="row">{who}</th>
              {WHAT.map(([what, bit]) => (
                <td key={what}>
                  <input type="checkbox" aria-label={`${who}: ${what}`} checked={(mode & (bit << shift)) !== 0} onChange={(e) => toggle(bit << shift, e.currentTarget.checked)} />
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      <fieldset class="specials">
        <legend>Special bits</legend>
        {SPECIAL.map(([words, bit]) => (
          <label key={words} class="check">
            <input type="checkbox" checked={(mode & bit) !== 0} onChange={(e) => toggle(bit, e.currentTarget.checked)} />
            {words}
          </label>
        ))}
      </fieldset>
      <label class="field">
        <span>As a number</span>
        <input
          type="text"
          inputMode="numeric"
          pattern="[0-7]{3,4}"
          value={typed}
          aria-describedby="mode-symbolic"
          onInput={(e) => {
            const v = e.currentTarget.value.trim();
            setTyped(v);
            if (/^[0-7]{3,4}$/.test(v)) setMode(Number.parseInt(v, 8));
          }}
        />
      </label>
      <p id="mode-symbolic" class="hint">
        <code>{symbolicMode(octal(mode), entry.type)}</code>
      </p>
    </FormDialog>
  );
}
