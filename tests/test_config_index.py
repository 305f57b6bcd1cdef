"""configs/eac/metafile.yaml indexes exactly the configs in configs/eac/,
and configs/eac/README.md names each of them."""
import glob
import os.path as osp

import yaml

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
EAC = osp.join(REPO, 'configs', 'eac')


def _metafile():
    with open(osp.join(EAC, 'metafile.yaml'), encoding='utf-8') as f:
        return yaml.safe_load(f)


def test_metafile_lists_every_config_once():
    meta = _metafile()
    assert [c['Name'] for c in meta['Collections']] == ['EAC']
    listed = [m['Config'] for m in meta['Models']]
    on_disk = sorted(
        osp.relpath(p, REPO) for p in glob.glob(osp.join(EAC, '*.py')))
    assert sorted(listed) == on_disk
    assert len(set(listed)) == len(listed)
    for m in meta['Models']:
        assert m['In Collection'] == 'EAC'
        assert m['Name'] == osp.splitext(osp.basename(m['Config']))[0]


def test_metafile_results_are_the_papers_probe_numbers():
    results = {
        m['Name']: m['Results']
        for m in _metafile()['Models'] if 'Results' in m
    }
    assert results == {
        'linear-probe_eac-b_1xb8-40k_ade20k-512x512': [{
            'Task': 'Semantic Segmentation',
            'Dataset': 'ADE20K',
            'Metrics': {
                'mIoU': 50.69
            }
        }],
        'linear-probe_eac-b_8xb16-12.5k_in1k-256px': [{
            'Task': 'Image Classification',
            'Dataset': 'ImageNet-1k',
            'Metrics': {
                'Top 1 Accuracy': 81.93
            }
        }],
    }


def test_readme_names_every_config():
    with open(osp.join(EAC, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    for path in glob.glob(osp.join(EAC, '*.py')):
        name = osp.basename(path)
        # the table groups sizes / crops as e.g. upernet_eac-{s,b,l}_...
        pattern_hits = [
            name in readme,
            name.replace('eac-s_', 'eac-{s,b,l}_') in readme,
            name.replace('eac-b_', 'eac-{s,b,l}_') in readme,
            name.replace('eac-l_', 'eac-{s,b,l}_') in readme,
            name.replace('eac-s_', 'eac-{s,l}_') in readme,
            name.replace('eac-l_', 'eac-{s,l}_') in readme,
            name.replace('512x512', '{512x512,1024x1024}') in readme,
            name.replace('1024x1024', '{512x512,1024x1024}') in readme,
        ]
        assert any(pattern_hits), name
