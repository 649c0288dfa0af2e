package policy

// Consumer is an API client of the configuration, known by its
// credentials. Its own policies replace the route's policies of the same
// kind, and add the kinds the route lacks, once an authentication policy
// has identified it.
type Consumer struct {
	Name  string
	chain *Chain
}

// SetChain gives the consumer its compiled policies.
func (c *Consumer) SetChain(ch *Chain) { c.chain = ch }

// Chain is the consumer's own compiled policies, nil without any.
func (c *Consumer) Chain() *Chain { return c.chain }

// BasicCredential is a consumer's username and password.
type BasicCredential struct {
	Consumer *Consumer
	Password string
}

// JWTCredential is a consumer's JWT verification secret: an HMAC secret or
// a PEM public key (RSA or ECDSA), for tokens whose subject claim names it.
type JWTCredential struct {
	Consumer *Consumer
	Secret   string
}

// Consumers indexes the configuration's consumers by their credentials,
// for the authentication policies.
type Consumers struct {
	list  []*Consumer
	named map[string]*Consumer
	keys  map[string]*Consumer
	basic map[string]BasicCredential
	jwt   map[string][]JWTCredential
}

// NewConsumers returns an empty index.
func NewConsumers() *Consumers {
	return &Consumers{
		named: map[string]*Consumer{},
		keys:  map[string]*Consumer{},
		basic: map[string]BasicCredential{},
		jwt:   map[string][]JWTCredential{},
	}
}

// Add adds a consumer.
func (cs *Consumers) Add(name string) *Consumer {
	c := &Consumer{Name: name}
	cs.list = append(cs.list, c)
	cs.named[name] = c
	return c
}

// AddKey records an API key of c.
func (cs *Consumers) AddKey(c *Consumer, key string) { cs.keys[key] = c }

// AddBasic records a username and password of c.
func (cs *Consumers) AddBasic(c *Consumer, username, password string) {
	cs.basic[username] = BasicCredential{Consumer: c, Password: password}
}

// AddJWT records a JWT secret of c for tokens of subject.
func (cs *Consumers) AddJWT(c *Consumer, subject, secret string) {
	cs.jwt[subject] = append(cs.jwt[subject], JWTCredential{Consumer: c, Secret: secret})
}

// All lists the consumers in configuration order.
func (cs *Consumers) All() []*Consumer { return cs.list }

// Named returns the consumer called name.
func (cs *Consumers) Named(name string) *Consumer { return cs.named[name] }

// ByKey returns the consumer holding key, nil for none.
func (cs *Consumers) ByKey(key []byte) *Consumer { return cs.keys[string(key)] }

// Basic returns the credential of username.
func (cs *Consumers) Basic(username []byte) (BasicCredential, bool) {
	b, ok := cs.basic[string(username)]
	return b, ok
}

// JWTs lists every JWT credential by subject.
func (cs *Consumers) JWTs() map[string][]JWTCredential { return cs.jwt }
