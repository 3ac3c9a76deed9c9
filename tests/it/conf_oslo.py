# Registers Staffeln's options (from the JSON export of conf::registry()) with
# the real oslo.config, then either generates the sample or resolves cases.
# Usage: python conf_oslo.py sample SPEC.json | python conf_oslo.py cases SPEC.json
import io
import json
import logging
import os
import sys

from oslo_config import cfg, generator
from oslo_log import versionutils

# The staffeln duration grammar as a regex (the original used a StrOpt regex).
DURATION = r'\A(?=.)(?:[0-9]+y)?(?:[0-9]+mon)?(?:[0-9]+w)?(?:[0-9]+d)?(?:[0-9]+h)?(?:[0-9]+min)?(?:[0-9]+s)?\Z'


def make_opt(o):
    kw = dict(help=o['help'], secret=o['secret'], mutable=o['mutable'])
    if o['sample_default'] is not None:
        kw['sample_default'] = o['sample_default']
    dep = [cfg.DeprecatedOpt(n, group=(g or None)) for g, n in o['deprecated']]
    if dep:
        kw['deprecated_opts'] = dep
    if o['cli'] and o['cli']['short']:
        kw['short'] = o['cli']['short']
    kind, name, default = o['kind'], o['name'], o['default']
    if o['cli']:
        # oslo.log spells its CLI options with dashes; dest keeps underscores.
        name = o['cli']['long']
    choices = [(c, d or None) for c, d in o['choices']] or None
    if kind == 'str':
        return cfg.StrOpt(name, default=default, choices=choices, regex=o['regex'], **kw)
    if kind == 'duration':
        return cfg.StrOpt(name, default=default, regex=DURATION, **kw)
    if kind == 'bool':
        return cfg.BoolOpt(name, default=default, **kw)
    if kind == 'int':
        return cfg.IntOpt(name, default=default, min=o['min'], max=o['max'], **kw)
    if kind == 'port':
        return cfg.PortOpt(name, default=default, **kw)
    if kind == 'list':
        return cfg.ListOpt(name, default=default, **kw)
    if kind == 'dict':
        return cfg.DictOpt(name, default=default, **kw)
    if kind == 'multistr':
        return cfg.MultiStrOpt(name, default=default, **kw)
    raise ValueError('unknown kind ' + kind)


def groups(spec):
    out = []
    for g in spec['registry']:
        opts = [(make_opt(o), o['cli'] is not None) for o in g['opts']]
        group = None if g['name'] == 'DEFAULT' else cfg.OptGroup(g['name'], help=g['help'] or None)
        out.append((g['name'], group, opts))
    return out


def sample(spec):
    listing = [(group, [o for o, _ in opts]) for _, group, opts in groups(spec)]
    generator._list_opts = lambda namespaces: [('staffeln', listing)]
    conf = cfg.ConfigOpts()
    generator.register_cli_opts(conf)
    conf(['--namespace', 'staffeln', '--wrap-width', '79'])
    out = io.StringIO()
    generator.generate(conf, output_file=out)
    sys.stdout.write(out.getvalue())


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def plain(v):
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


def run_case(spec, case):
    for k in [k for k in os.environ if k.startswith('OS_')]:
        del os.environ[k]
    os.environ.update(case['env'])
    # oslo.log reports each deprecation once per process; cases are separate.
    versionutils._deprecated_messages_sent.clear()
    collect = Collect()
    logger = logging.getLogger('oslo_config.cfg')
    logger.addHandler(collect)
    logger.setLevel(logging.WARNING)
    try:
        conf = cfg.ConfigOpts()
        gs = groups(spec)
        for _, group, opts in gs:
            if group is not None:
                conf.register_group(group)
            for opt, is_cli in opts:
                if is_cli:
                    conf.register_cli_opt(opt, group=group)
                else:
                    conf.register_opt(opt, group=group)
        conf(args=case['args'], project='staffeln-xcheck', prog='staffeln-xcheck',
             default_config_files=[], default_config_dirs=[])
        values = {}
        for name, group, opts in gs:
            node = conf if group is None else getattr(conf, name)
            for opt, _ in opts:
                values[name + '.' + opt.dest] = plain(getattr(node, opt.dest))
        return {'values': values, 'warnings': collect.messages}
    except (cfg.Error, ValueError) as e:
        return {'error': type(e).__name__ + ': ' + str(e)}
    except SystemExit as e:
        # argparse rejects bad values of CLI options found in files.
        return {'error': 'SystemExit: ' + str(e)}
    finally:
        logger.removeHandler(collect)


def main():
    mode, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        spec = json.load(f)
    if mode == 'sample':
        sample(spec)
    else:
        json.dump([run_case(spec, c) for c in spec['cases']], sys.stdout)


main()
