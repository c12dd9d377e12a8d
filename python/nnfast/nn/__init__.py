"""``nnfast.nn``: modules with PyTorch's names, signatures and defaults."""
from . import functional as functional, init as init, utils as utils  # noqa: F401
from .activation import *  # noqa: F401,F403
from .attention import *  # noqa: F401,F403
from .container import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .misc import *  # noqa: F401,F403
from .module import Module as Module, Parameter as Parameter  # noqa: F401
from .normalization import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from . import regularization as regularization  # noqa: F401,E402
from .rnn import *  # noqa: F401,F403,E402
from .sparse import *  # noqa: F401,F403,E402
from .syncbatchnorm import *  # noqa: F401,F403,E402
from . import parallel as parallel  # noqa: F401,E402
from .transformer import *  # noqa: F401,F403,E402
from .upsampling import *  # noqa: F401,F403,E402
