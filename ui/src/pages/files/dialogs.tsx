import { useEffect, useRef, useState } from 'preact/hooks';
import type { Api, JobProgress } from '../../api/client.js';
import { Problem } from '../../api/errors.js';
import type { Entry } from '../../api/types.js';
import { join } from '../../paths.js';
import { FormDialog } from './form-dialog.js';

/** Dialogs that change the namespace: new folder, rename, move, delete. Each calls onDone once the server has done it. */

const jobWords = (verb: string): ((set: (s: string) => void) => JobProgress) => (set) => (job) =>
  set(job.state === 'running' ? `${verb}: ${job.entries_done} of ${job.entries_total} entries…` : `${verb}: done`);

function nameProblem(name: string): string | null {
  if (name === '' || name === '.' || name === '..') return 'Give it a name.';
  if (name.includes('/')) return 'A name cannot contain “/”.';
  return null;
}

/** A name field that reports its problem inline (the server checks again). */
function NameField({ label, value, onInput, selectStem = false }: { label: string; value: string; onInput: (v: string) => void; selectStem?: boolean }) {
  const ref = useRef<HTMLInputElement>(null);
  useEffect(() => {
    const input = ref.current;
    if (input === null) return;
    input.focus();
    // Renaming "report.pdf" starts with "report" selected, as file managers do.
    const dot = selectStem ? input.value.lastIndexOf('.') : -1;
    input.setSelectionRange(0, dot > 0 ? dot : input.value.length);
  }, [selectStem]);
  return (
    <label class="field">
      <span>{label}</span>
      <input ref={ref} type="text" required value={value} spellcheck={false} autocomplete="off" onInput={(e) => onInput(e.currentTarget.value)} />
    </label>
  );
}

export function NewFolderDialog({ api, dir, onDone, onClose }: { api: Api; dir: string; onDone: (path: string) => void; onClose: () => void }) {
  const [name, setName] = useState('');
  return (
    <FormDialog
      title="New folder"
      submitLabel="Create"
      onClose={onClose}
      action={async () => {
        const problem = nameProblem(name.trim());
        if (problem !== null) throw new Problem(problem);
        const path = join(dir, name.trim());
        const { created } = await api.makeDirectory(path);
        if (!created) throw new Problem(`A folder named “${name.trim()}” is already here.`);
        onDone(path);
      }}
    >
      <NameField label="Folder name" value={name} onInput={setName} />
    </FormDialog>
  );
}

export function RenameDialog({ api, entry, onDone, onClose }: { api: Api; entry: Entry; onDone: (path: string) => void; onClose: () => void }) {
  const [name, setName] = useState(entry.name);
  return (
    <FormDialog
      title={`Rename ${entry.name}`}
      submitLabel="Rename"
      onClose={onClose}
      action={async () => {
        const problem = nameProblem(name.trim());
        if (problem !== null) throw new Problem(problem);
        if (name.trim() === entry.name) return onClose();
        onDone(await api.rename(entry.path, name.trim()));
      }}
    >
      <NameField label="New name" value={name} onInput={setName} selectStem={entry.type === 'file'} />
    </FormDialog>
  );
}

export function MoveDialog({ api, entry, dir, onDone, onClose }: { api: Api; entry: Entry; dir: string; onDone: (path: string) => void; onClose: () => void }) {
  const [target, setTarget] = useState(dir);
  const [createParents, setCreateParents] = useState(false);
  const [progress, setProgress] = useState<string | null>(null);
  return (
    <FormDialog
      title={`Move ${entry.name}`}
      submitLabel="Move"
      onClose={onClose}
      progress={progress}
      action={async () => {
        const folder = `/${target.trim().split('/').filter((s) => s !== '').join('/')}`;
        if (folder === dir) throw new Problem('It is already in that folder: give another one.');
        onDone(await api.move(entry.path, join(folder, entry.name), { createParents, onProgress: jobWords('Moving')(setProgress) }));
      }}
    >
      <label class="field">
        <span>To the folder</span>
        <input type="text" required value={target} spellcheck={false} autocomplete="off" onInput={(e) => setTarget(e.currentTarget.value)} autofocus />
      </label>
      <label class="check">
        <input type="checkbox" checked={createParents} onChange={(e) => setCreateParents(e.currentTarget.checked)} />
        Create the folder if it does not exist
      </label>
    </FormDialog>
  );
}

export function DeleteDialog({ api, entry, onDone, onClose }: { api: Api; entry: Entry; onDone: () => void; onClose: () => void }) {
  const [progress, setProgress] = useState<string | null>(null);
  const folder = entry.type === 'directory';
  return (
    <FormDialog
      title={folder ? `Delete the folder ${entry.name}?` : `Delete ${entry.name}?`}
      submitLabel={folder ? 'Delete folder and contents' : 'Delete'}
      danger
      onClose={onClose}
      progress={progress}
      action={async () => {
        await api.remove(entry.path, { recursive: folder, onProgress: jobWords('Deleting')(setProgress) });
        onDone();
      }}
    >
      <p>
        {folder
          ? `The folder ${entry.path} and everything in it will be deleted. This cannot be undone.`
          : `${entry.path} will be deleted. This cannot be undone.`}
      </p>
    </FormDialog>
  );
}

/** Some dropped or picked files have the names of files already here. */
export function ReplaceDialog({ names, onReplace, onSkip, onClose }: { names: string[]; onReplace: () => void; onSkip: () => void; onClose: () => void }) {
  return (
    <FormDialog title={names.length === 1 ? 'Replace a file?' : `Replace ${names.length} files?`} submitLabel="Replace" onClose={onClose} action={async () => onReplace()}>
      <p>{names.length === 1 ? 'This folder already has a file with this name:' : 'This folder already has files with these names:'}</p>
      <ul class="names">
        {names.slice(0, 10).map((n) => (
          <li key={n}>{n}</li>
        ))}
        {names.length > 10 && <li>and {names.length - 10} more</li>}
      </ul>
      <p>
        <button type="button" class="button" onClick={onSkip}>
          Upload only the others
        </button>
      </p>
    </FormDialog>
  );
}
