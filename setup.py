# nbdev's standard setup.py: everything comes from settings.ini.
from configparser import ConfigParser
import setuptools, shlex

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

cfg_keys = 'version description keywords author author_email'.split()
expected = cfg_keys + "lib_name user branch license status min_python audience language".split()
for o in expected: assert o in cfg, "missing expected setting: {}".format(o)
setup_cfg = {o: cfg[o] for o in cfg_keys}

licenses = {'apache2': 'Apache-2.0', 'mit': 'MIT'}   # SPDX expressions (no License :: classifier: setuptools >= 77)
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12'.split()

def reqs(key): return shlex.split(cfg.get(key, '').strip())

requirements = reqs('requirements')
if cfg.get('pip_requirements'): requirements += reqs('pip_requirements')
min_python = cfg['min_python']
lic = licenses.get(cfg['license'].lower(), cfg['license'])

setuptools.setup(
    name=cfg['lib_name'],
    license=lic,
    license_files=['LICENSE'],
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])],
                 'Intended Audience :: ' + cfg['audience'].title(),
                 'Natural Language :: ' + cfg['language'].title()] +
                ['Programming Language :: Python :: ' + o for o in py_versions[py_versions.index(min_python):]],
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=['anitalker', 'anitalker.*']),
    # package data: the official model manifests, and the experiment notebooks with their presets (anitalker/experiments
    # is a link to nbs/experiments, so `anitalker experiment` and `anitalker quickstart` work from a wheel)
    package_data={'anitalker': ['reference/*.json', 'experiments/*.ipynb', 'experiments/params/*.yaml',
                                'experiments/params/ablations/*.yaml', 'reports/*.html',
                                'demos/*.ipynb', 'demos/jupyter/voila/templates/anitalker/*']},
    include_package_data=False,
    install_requires=requirements,
    extras_require={'dev': reqs('dev_requirements'), 'faces': reqs('faces_requirements')},
    dependency_links=cfg.get('dep_links', '').split(),
    python_requires='>=' + cfg['min_python'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={
        'console_scripts': cfg.get('console_scripts', '').split(),
        'nbdev': [f'{cfg.get("lib_path")}={cfg.get("lib_path")}._modidx:d'],
    },
    **setup_cfg)
