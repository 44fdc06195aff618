// neurolesion viewer: study list, NiiVue review of every lesion, correction, timing and exports.
// All data comes from the token-protected API; user-supplied text is only ever set as textContent.
import { Niivue, NVImage, SHOW_RENDER } from '@niivue/niivue'

const $ = (id) => document.getElementById(id)
const SEQUENCES = ['t1', 't1c', 't2', 'flair', 't2star', 'swi']
const COLOURS = ['red', 'green', 'blue', 'warm', 'violet', 'cool', 'winter']
const BRAIN = 'brain mask' // overlay of the job's brain_mask.nii.gz, drawn as its outline

const state = {
  token: '',
  nv: null,
  job: null,
  background: '',
  buffers: new Map(), // image name -> ArrayBuffer (per opened job)
  overlays: {}, // task or BRAIN -> {colour, opacity, visible}
  version: 0,
  editTask: '',
  editSince: 0, // performance.now() when editing started (0: not editing)
  correctionMs: 0,
  openedAt: 0,
  accepted: new Set(), // "task:id" accepted by the reviewer
  streams: new Set(),
}

// ---------------------------------------------------------------- API
function readToken() {
  const match = location.hash.match(/token=([^&]+)/)
  if (match) {
    sessionStorage.setItem('neurolesion-token', decodeURIComponent(match[1]))
    history.replaceState(null, '', location.pathname + location.search)
  }
  state.token = sessionStorage.getItem('neurolesion-token') || ''
  $('token-box').hidden = Boolean(state.token)
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, ...(options.headers || {}) }
  const response = await fetch(path, { ...options, headers })
  if (response.status === 401) {
    $('token-box').hidden = false
    throw new Error('missing or wrong access token')
  }
  if (!response.ok) {
    let detail = response.statusText
    try {
      detail = (await response.json()).detail
    } catch {
      /* not JSON */
    }
    throw new Error(typeof detail === 'string' ? detail : JSON.stringify(detail))
  }
  return response
}

function cell(text, className = '') {
  const td = document.createElement('td')
  td.textContent = text ?? ''
  if (className) td.className = className
  return td
}

// ---------------------------------------------------------------- study list
function jobRow(job) {
  const tr = document.createElement('tr')
  tr.dataset.jobId = job.id
  tr.dataset.status = job.status
  const stage = document.createElement('td')
  if (job.status === 'running' || job.status === 'queued') {
    const bar = document.createElement('progress')
    bar.max = 1
    bar.value = job.progress
    stage.append(bar, ` ${job.stage}`)
  } else {
    stage.textContent = job.status === 'failed' ? job.error : job.stage
  }
  tr.append(cell(job.label), cell(job.status, `status-${job.status}`), stage, cell(job.created_at.slice(0, 16).replace('T', ' ')))
  if (state.job && state.job.id === job.id) tr.classList.add('selected')
  tr.onclick = () => job.status === 'done' && openJob(job.id).catch(showError($('upload-status')))
  return tr
}

function showJob(job) {
  const body = $('study-table').tBodies[0]
  const old = body.querySelector(`tr[data-job-id="${job.id}"]`)
  const row = jobRow(job)
  if (old) old.replaceWith(row)
  else body.prepend(row)
}

async function refreshJobs() {
  const jobs = await (await api('/api/jobs')).json()
  $('study-table').tBodies[0].replaceChildren(...jobs.map(jobRow))
  jobs.filter((j) => j.status === 'queued' || j.status === 'running').forEach((j) => follow(j.id))
}

// Server-sent events read through fetch (so the token travels in a header, never in a URL).
async function follow(jobId) {
  if (state.streams.has(jobId)) return
  state.streams.add(jobId)
  try {
    const response = await api(`/api/jobs/${jobId}/events`)
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      buffer += value
      let end
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const data = buffer
          .slice(0, end)
          .split('\n')
          .filter((line) => line.startsWith('data: '))
          .map((line) => line.slice(6))
          .join('')
        buffer = buffer.slice(end + 2)
        if (data) showJob(JSON.parse(data))
      }
    }
  } finally {
    state.streams.delete(jobId)
  }
}

async function upload(event) {
  event.preventDefault()
  const status = $('upload-status')
  const form = new FormData()
  for (const file of $('upload-files').files) form.append('files', file, file.name)
  for (const file of $('upload-folder').files) form.append('files', file, file.webkitRelativePath || file.name)
  if (!form.has('files')) {
    status.textContent = 'choose a DICOM zip or folder, or NIfTI files'
    return
  }
  const named = {}
  for (const select of $('upload-sequences').querySelectorAll('select')) if (select.value) named[select.dataset.file] = select.value
  form.append('sequences', JSON.stringify(named))
  form.append('label', $('upload-label').value)
  form.append('tasks', $('upload-tasks').value)
  status.textContent = 'uploading...'
  try {
    const job = await (await api('/api/jobs', { method: 'POST', body: form })).json()
    status.textContent = 'queued'
    showJob(job)
    follow(job.id)
    $('upload-form').reset()
    sequenceChoices()
  } catch (error) {
    showError(status)(error)
  }
}

// One sequence choice per chosen NIfTI file ("detect" keeps the name-based detection).
function sequenceChoices() {
  const box = $('upload-sequences')
  box.replaceChildren()
  for (const file of $('upload-files').files) {
    if (!/\.nii(\.gz)?$/i.test(file.name)) continue
    const select = document.createElement('select')
    select.dataset.file = file.name
    select.append(new Option('detect', ''), ...SEQUENCES.map((s) => new Option(s, s)))
    const label = document.createElement('label')
    label.append(`${file.name} `, select)
    box.append(label)
  }
}

function showError(element) {
  return (error) => {
    element.textContent = error.message
    element.classList.add('error')
  }
}

// ---------------------------------------------------------------- viewer
async function imageBuffer(name) {
  const key = `${name}@${state.version}`
  if (!state.buffers.has(key)) {
    const response = await api(`/api/jobs/${state.job.id}/images/${name}`)
    state.buffers.set(key, await response.arrayBuffer())
  }
  return state.buffers.get(key)
}

async function nvImage(name, options = {}) {
  const buffer = (await imageBuffer(name)).slice(0)
  return NVImage.loadFromUrl({ url: buffer, name: `${name}.nii.gz`, ...options })
}

async function ensureNiivue() {
  if (state.nv) return state.nv
  const nv = new Niivue({
    backColor: [0, 0, 0, 1],
    crosshairColor: [0.2, 0.8, 1, 0.8],
    crosshairWidth: 1,
    show3Dcrosshair: true,
    dragAndDropEnabled: false,
    multiplanarShowRender: SHOW_RENDER.ALWAYS,
  })
  await nv.attachTo('gl')
  nv.onLocationChange = (location) => {
    $('location').textContent = location.string
  }
  nv.setSliceType(nv.sliceTypeMultiplanar)
  state.nv = nv
  return nv
}

// Overlays in NiiVue volume order after the background: one per task, then the brain mask.
function overlayNames() {
  return [...state.job.label_tasks, ...(state.job.has_brain_mask ? [BRAIN] : [])]
}

// Keep the voxels of a mask that touch the outside (6-neighbours, native grid): its outline on every view.
function outline(image) {
  const [, nx, ny, nz] = image.hdr.dims
  const mask = image.img.slice(0)
  const axes = [[1, nx], [nx, ny], [nx * ny, nz]] // stride and extent of each axis
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue
    const at = [i % nx, Math.floor(i / nx) % ny, Math.floor(i / (nx * ny))]
    const edge = axes.some(([stride, n], a) => at[a] === 0 || at[a] === n - 1 || !mask[i - stride] || !mask[i + stride])
    if (!edge) image.img[i] = 0
  }
  return image
}

// Background sequence first, then the overlays (labels > 0 in the task colour, the brain mask's outline).
async function loadImages() {
  const nv = state.nv
  const images = [await nvImage(state.background, { colormap: 'gray' })]
  for (const name of overlayNames()) {
    const o = state.overlays[name]
    const options = { colormap: o.colour, opacity: !o.visible || name === state.editTask ? 0 : o.opacity, cal_min: 0.5, cal_max: 1 }
    images.push(name === BRAIN ? outline(await nvImage('brain_mask', options)) : await nvImage(`labels-${name}`, options))
  }
  // keep the crosshair on the same scanner position when the background (and so the grid) changes
  const mm = nv.volumes.length ? nv.frac2mm(nv.scene.crosshairPos, 0, true) : null
  while (nv.volumes.length) nv.removeVolumeByIndex(0)
  for (const image of images) nv.addVolume(image)
  if (mm) nv.scene.crosshairPos = nv.mm2frac(mm, 0, true)
  nv.updateGLVolume()
  $('canvas-box').dataset.loaded = String(images.length)
}

function overlayIndex(task) {
  return 1 + overlayNames().indexOf(task)
}

function applyOverlay(task) {
  const o = state.overlays[task]
  const index = overlayIndex(task)
  const volume = state.nv.volumes[index]
  if (!volume) return
  state.nv.setColormap(volume.id, o.colour)
  state.nv.setOpacity(index, o.visible && task !== state.editTask ? o.opacity : 0)
}

function overlayControls() {
  const box = $('overlay-controls')
  box.replaceChildren()
  overlayNames().forEach((task, i) => {
    const initial = task === BRAIN ? 'winter' : COLOURS[i % COLOURS.length]
    // the brain outline starts hidden: in the 3D view its surface would cover the lesions
    state.overlays[task] = state.overlays[task] || { colour: initial, opacity: task === BRAIN ? 0.8 : 0.6, visible: task !== BRAIN }
    const o = state.overlays[task]
    const wrap = document.createElement('span')
    wrap.className = 'overlay'
    const visible = Object.assign(document.createElement('input'), { type: 'checkbox', checked: o.visible })
    visible.dataset.task = task
    const colour = document.createElement('select')
    for (const name of COLOURS) colour.append(new Option(name, name, false, name === o.colour))
    const opacity = Object.assign(document.createElement('input'), { type: 'range', min: 0, max: 1, step: 0.05, value: o.opacity })
    visible.onchange = () => ((o.visible = visible.checked), applyOverlay(task))
    colour.onchange = () => ((o.colour = colour.value), applyOverlay(task))
    opacity.oninput = () => ((o.opacity = Number(opacity.value)), applyOverlay(task))
    wrap.append(visible, ` ${task} `, colour, ' opacity ', opacity)
    box.append(wrap)
  })
}

async function openJob(jobId) {
  if (state.editSince) stopEditing()
  const job = await (await api(`/api/jobs/${jobId}`)).json()
  Object.assign(state, { job, buffers: new Map(), overlays: {}, version: 0, editTask: '', correctionMs: 0 })
  state.openedAt = performance.now()
  state.accepted = new Set()
  state.background = job.reference || job.sequences[0]
  $('viewer').hidden = false
  $('viewer-hint').hidden = true
  $('viewer-title').textContent = job.label
  $('sequence-select').replaceChildren(...job.sequences.map((s) => new Option(s, s, false, s === state.background)))
  $('edit-task').replaceChildren(...job.label_tasks.map((t) => new Option(t, t)))
  $('review-summary').replaceChildren()
  overlayControls()
  document.querySelectorAll('#study-table tr').forEach((tr) => tr.classList.toggle('selected', tr.dataset.jobId === jobId))
  await ensureNiivue()
  await loadImages()
  renderLesions(job.lesions)
}

function jumpTo(row) {
  const nv = state.nv
  // true scanner mm (isForceSliceMM): oblique grids are shown voxel-aligned, so the "ortho" mm would miss
  nv.scene.crosshairPos = nv.mm2frac([row.centroid_x, row.centroid_y, row.centroid_z], 0, true)
  nv.updateGLVolume()
  const mm = nv.frac2mm(nv.scene.crosshairPos, 0, true)
  const where = $('location')
  where.textContent = `${row.task} lesion ${row.id} at ${[0, 1, 2].map((i) => mm[i].toFixed(1)).join(', ')} mm (RAS)`
  where.dataset.mm = JSON.stringify([mm[0], mm[1], mm[2]])
}

function renderLesions(rows) {
  state.job.lesions = rows
  const body = $('lesion-table').tBodies[0]
  const corrected = new Set(state.job.reviews.map((review) => review.task))
  body.replaceChildren(
    ...rows.map((row) => {
      const tr = document.createElement('tr')
      tr.dataset.lesion = `${row.task}:${row.id}`
      for (const axis of ['x', 'y', 'z']) tr.dataset[`centroid${axis.toUpperCase()}`] = row[`centroid_${axis}`]
      const key = `${row.task}:${row.id}`
      const conf = row.confidence === '' || row.confidence == null ? '' : Number(row.confidence).toFixed(2)
      tr.append(
        cell(row.id),
        cell(row.task),
        cell(row.subtype ? `${row.type}/${row.subtype}` : row.type),
        cell(Number(row.volume_ml).toFixed(3)),
        cell(row.max_diameter_mm),
        cell(row.region),
        cell(row.lobe),
        cell([row.centroid_x, row.centroid_y, row.centroid_z].map((v) => Number(v).toFixed(1)).join(', ')),
        cell(conf),
        cell(state.accepted.has(key) ? 'accepted' : corrected.has(row.task) ? 'corrected' : 'AI'),
      )
      const actions = document.createElement('td')
      const accept = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Accept' })
      const remove = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Delete' })
      accept.onclick = (event) => {
        event.stopPropagation()
        state.accepted.add(key)
        renderLesions(state.job.lesions)
      }
      remove.onclick = (event) => {
        event.stopPropagation()
        deleteLesion(row).catch(showError($('edit-status')))
      }
      actions.append(accept, remove)
      tr.append(actions)
      tr.onclick = () => {
        body.querySelectorAll('tr').forEach((r) => r.classList.toggle('selected', r === tr))
        $('pen-value').value = row.id
        jumpTo(row)
      }
      return tr
    }),
  )
}

// ---------------------------------------------------------------- correction
function setEditButtons(enabled) {
  for (const id of ['pen-draw', 'pen-erase', 'pen-value', 'pen-fill', 'edit-undo', 'edit-save']) $(id).disabled = !enabled
  $('edit-start').classList.toggle('active', enabled)
}

async function startEditing(task = $('edit-task').value) {
  const nv = state.nv
  if (state.editSince && state.editTask === task) return
  if (state.editSince) stopEditing()
  state.editTask = task
  $('edit-task').value = task
  if (state.background !== state.job.reference) {
    state.background = state.job.reference
    $('sequence-select').value = state.background
  }
  await loadImages() // the drawing shares the reference grid; the task's overlay is hidden while editing
  const labels = await nvImage(`labels-${task}`)
  if (!nv.loadDrawing(labels)) throw new Error(`labels of ${task} do not match the ${state.background} grid`)
  nv.drawOpacity = 0.7
  nv.setDrawingEnabled(true)
  setPen(Number($('pen-value').value) || 1)
  state.editSince = performance.now()
  setEditButtons(true)
  $('edit-status').textContent = `editing ${task}`
}

function stopEditing() {
  state.correctionMs += performance.now() - state.editSince
  state.editSince = 0
  state.nv.setDrawingEnabled(false)
  state.nv.closeDrawing?.()
  state.editTask = ''
  setEditButtons(false)
}

function setPen(value) {
  state.nv.setPenValue(value, $('pen-fill').checked)
  $('pen-draw').classList.toggle('active', value > 0)
  $('pen-erase').classList.toggle('active', value === 0)
}

async function deleteLesion(row) {
  await startEditing(row.task)
  const nv = state.nv
  for (let i = 0; i < nv.drawBitmap.length; i++) if (nv.drawBitmap[i] === row.id) nv.drawBitmap[i] = 0
  nv.drawAddUndoBitmap()
  nv.refreshDrawing(true)
  state.accepted.delete(`${row.task}:${row.id}`)
  const tr = document.querySelector(`#lesion-table tr[data-lesion="${row.task}:${row.id}"]`)
  if (tr) tr.classList.add('deleted')
  $('edit-status').textContent = `lesion ${row.id} deleted (save to keep)`
}

async function saveCorrection() {
  const nv = state.nv
  const task = state.editTask
  const now = performance.now()
  state.correctionMs += now - state.editSince
  state.editSince = now
  // NiiVue 0.57's saveImage({isSaveDrawing}) re-orients a drawing to the native grid twice (flipping any
  // non-RAS grid); saveToDisk with the drawing re-orients it once, as it must.
  const bytes = await nv.volumes[0].saveToDisk('', nv.drawBitmap)
  const form = new FormData()
  form.append('file', new Blob([bytes], { type: 'application/octet-stream' }), `${task}_labels.nii`)
  form.append('review_seconds', ((now - state.openedAt) / 1000).toFixed(1))
  form.append('correction_seconds', (state.correctionMs / 1000).toFixed(1))
  const accepted = [...state.accepted].filter((k) => k.startsWith(`${task}:`)).map((k) => Number(k.split(':')[1]))
  form.append('accepted', JSON.stringify(accepted))
  const review = await (await api(`/api/jobs/${state.job.id}/labels/${task}`, { method: 'PUT', body: form })).json()
  state.version += 1
  const job = await (await api(`/api/jobs/${state.job.id}`)).json()
  state.job = job
  renderLesions(job.lesions)
  showReview(review)
  $('edit-status').textContent = `saved: case Dice AI vs accepted ${review.case_dice.toFixed(3)}`
}

function showReview(review) {
  const box = $('review-summary')
  const title = document.createElement('p')
  title.textContent =
    `${review.task}: case Dice ${review.case_dice.toFixed(3)}, review ${review.review_seconds.toFixed(0)} s, ` +
    `correction ${review.correction_seconds.toFixed(0)} s`
  const list = document.createElement('ul')
  for (const lesion of review.lesions) {
    const li = document.createElement('li')
    li.textContent = `AI lesion ${lesion.ai_id ?? '-'} -> ${lesion.accepted_ids.join(', ') || 'none'}: ${lesion.status}, Dice ${lesion.dice}`
    list.append(li)
  }
  box.replaceChildren(title, list)
  box.dataset.caseDice = String(review.case_dice)
}

// ---------------------------------------------------------------- exports
async function download(kind) {
  const status = $('export-status')
  status.classList.remove('error')
  status.textContent = `preparing ${kind}...`
  const path =
    kind === 'review-log' ? `/api/review-log.csv?job_id=${state.job.id}` : `/api/jobs/${state.job.id}/export/${kind}`
  try {
    const response = await api(path)
    const disposition = response.headers.get('content-disposition') || ''
    const name = (disposition.match(/filename="?([^";]+)"?/) || [])[1] || kind
    const url = URL.createObjectURL(await response.blob())
    const link = Object.assign(document.createElement('a'), { href: url, download: name })
    document.body.append(link)
    link.click()
    link.remove()
    setTimeout(() => URL.revokeObjectURL(url), 1000)
    status.textContent = `${name} downloaded`
  } catch (error) {
    showError(status)(error)
  }
}

// ---------------------------------------------------------------- wiring
function wire() {
  $('upload-form').onsubmit = upload
  $('upload-files').onchange = sequenceChoices
  $('token-button').onclick = () => {
    state.token = $('token-input').value.trim()
    sessionStorage.setItem('neurolesion-token', state.token)
    $('token-box').hidden = true
    refreshJobs().catch(showError($('upload-status')))
  }
  $('sequence-select').onchange = async () => {
    if (state.editSince) stopEditing()
    state.background = $('sequence-select').value
    await loadImages()
  }
  const views = { multi: 'sliceTypeMultiplanar', axial: 'sliceTypeAxial', coronal: 'sliceTypeCoronal', sagittal: 'sliceTypeSagittal', render: 'sliceTypeRender' }
  document.querySelectorAll('[data-view]').forEach((button) => {
    button.onclick = () => state.nv && state.nv.setSliceType(state.nv[views[button.dataset.view]])
  })
  $('edit-start').onclick = () => startEditing().catch(showError($('edit-status')))
  $('pen-draw').onclick = () => setPen(Number($('pen-value').value) || 1)
  $('pen-erase').onclick = () => setPen(0)
  $('pen-value').onchange = () => setPen(Number($('pen-value').value) || 1)
  $('pen-fill').onchange = () => setPen(state.nv.opts.penValue)
  $('edit-undo').onclick = () => state.nv.drawUndo()
  $('edit-save').onclick = () => saveCorrection().catch(showError($('edit-status')))
  document.querySelectorAll('[data-export]').forEach((button) => {
    button.onclick = () => download(button.dataset.export)
  })
}

readToken()
wire()
if (state.token) refreshJobs().catch(showError($('upload-status')))
