import { render } from 'preact';
import { App } from './app.js';
// In this order: the small-screen rules come last, to override the rest.
import './styles/base.css';
import './styles/files.css';
import './styles/cluster.css';
import './styles/small-screens.css';

render(<App />, document.getElementById('app') as HTMLElement);
